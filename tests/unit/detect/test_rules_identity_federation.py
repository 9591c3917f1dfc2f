"""Roles Anywhere trust and federation tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from harvester.detect.model import Severity
from harvester.events import Event
from tests.unit.detect.builders import ACCOUNT, ct, detect, only, role, root, user

Make = Callable[[], Event]

_PROFILE_ARN = (
    f"arn:aws:rolesanywhere:us-east-1:{ACCOUNT}:profile/7f3c0a1e-5c1b-4a51-9f4e-4c1b2f0e9d21"
)
_BUNDLE_ANCHOR = {
    "enabled": True,
    "name": "partner-ca",
    "source": {
        "sourceData": {
            "x509CertificateData": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
        },
        "sourceType": "CERTIFICATE_BUNDLE",
    },
}
_PCA_ANCHOR = {
    "enabled": True,
    "name": "corp-pca",
    "source": {
        "sourceData": {"acmPcaArn": f"arn:aws:acm-pca:us-east-1:{ACCOUNT}:certificate-authority/1"},
        "sourceType": "AWS_ACM_PCA",
    },
}
_FEDERATION = {"name": "backup-session", "durationSeconds": 129600}
_FEDERATION_RESPONSE = {
    "credentials": {"accessKeyId": "ASIAEXAMPLEFEDERATED", "expiration": "Jan 7, 2026, 9:00:00 PM"},
    "federatedUser": {
        "federatedUserId": f"{ACCOUNT}:backup-session",
        "arn": f"arn:aws:sts::{ACCOUNT}:federated-user/backup-session",
    },
    "packedPolicySize": 6,
}

# detector id: (positive, negative), run with every rule's in test_rules.py
CASES: dict[str, tuple[Make, Make]] = {
    "aws.roles-anywhere-changed": (
        lambda: ct("CreateTrustAnchor", "rolesanywhere", params=_BUNDLE_ANCHOR),
        lambda: ct("ListTrustAnchors", "rolesanywhere", params={}),
    ),
    "aws.federation-token": (
        lambda: ct(
            "GetFederationToken",
            "sts",
            identity=user(),
            params=_FEDERATION,
            response=_FEDERATION_RESPONSE,
        ),
        lambda: ct("GetSessionToken", "sts", identity=user(), params={"durationSeconds": 3600}),
    ),
}


@pytest.mark.parametrize(
    ("name", "params", "severity"),
    [
        ("CreateTrustAnchor", _BUNDLE_ANCHOR, Severity.high),
        ("CreateTrustAnchor", _PCA_ANCHOR, Severity.medium),
        (
            "UpdateTrustAnchor",
            {"trustAnchorId": "a1b2", "source": orjson.dumps(_BUNDLE_ANCHOR["source"]).decode()},
            Severity.high,
        ),
        (
            "CreateProfile",
            {
                "name": "ci",
                "roleArns": [f"arn:aws:iam::{ACCOUNT}:role/admin"],
                "durationSeconds": 3600,
            },
            Severity.medium,
        ),
        ("EnableProfile", {"profileId": _PROFILE_ARN.rsplit("/", 1)[-1]}, Severity.medium),
        ("ImportCrl", {"name": "crl", "trustAnchorArn": "x", "crlData": "..."}, Severity.low),
    ],
)
def test_roles_anywhere_severity(name: str, params: dict[str, Any], severity: Severity) -> None:
    anomaly = only(detect(ct(name, "rolesanywhere", params=params)), "aws.roles-anywhere-changed")
    assert anomaly.severity is severity


def test_a_refused_trust_anchor_is_an_attempt() -> None:
    event = ct(
        "CreateTrustAnchor", "rolesanywhere", params=_BUNDLE_ANCHOR, error="AccessDeniedException"
    )
    anomaly = only(detect(event), "aws.roles-anywhere-changed")
    assert anomaly.severity is Severity.low
    assert "AccessDeniedException" in anomaly.explanation


@pytest.mark.parametrize(
    ("identity", "params", "severity"),
    [
        (user(), _FEDERATION, Severity.medium),
        (role(), _FEDERATION, Severity.low),
        (root(), _FEDERATION, Severity.high),
        (
            user(),
            {
                "name": "x",
                "policy": '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
            },
            Severity.high,
        ),
    ],
)
def test_federation_token_severity(
    identity: dict[str, Any], params: dict[str, Any], severity: Severity
) -> None:
    event = ct("GetFederationToken", "sts", identity=identity, params=params)
    assert only(detect(event), "aws.federation-token").severity is severity


def test_federation_token_explains_the_name_and_duration() -> None:
    event = ct("GetFederationToken", "sts", identity=user(), params=_FEDERATION)
    explanation = only(detect(event), "aws.federation-token").explanation
    assert "backup-session" in explanation
    assert "36 h" in explanation
