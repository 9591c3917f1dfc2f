"""Normalization: every principal type, both sources, the cross-source key, serialization."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from harvester.events import (
    UNKNOWN_TIME,
    Event,
    InvalidRecordError,
    decode_events,
    encode_events,
    normalize_cloudtrail,
    normalize_k8s,
    payload,
    role_arn_from_session_arn,
)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.fixture(scope="module")
def panther() -> list[dict[str, Any]]:
    path = CORPUS / "panther-analysis" / "cloudtrail.events.jsonl"
    if not path.is_file():
        pytest.skip(f"the shared corpus is not at {CORPUS} (clone it next to the repository)")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def panther_k8s() -> list[dict[str, Any]]:
    path = CORPUS / "panther-analysis" / "k8s_audit.events.jsonl"
    if not path.is_file():
        pytest.skip(f"the shared corpus is not at {CORPUS} (clone it next to the repository)")
    return [json.loads(line) for line in path.read_text().splitlines()]


def ct(record: dict[str, Any] | bytes, index: int = 0) -> Event:
    return normalize_cloudtrail(record, bucket="logs", key="AWSLogs/x.json.gz", index=index)


def k8s(event: dict[str, Any] | bytes, index: int = 0) -> Event:
    return normalize_k8s(
        event,
        cluster="prod",
        account="123456789012",
        region="us-east-1",
        bucket="logs",
        key="EKSLogs/x",
        index=index,
    )


# --- CloudTrail principals from the panther corpus --------------------------------------------


def test_iam_user(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[0], 0)
    p = event.principal
    assert p.type == "iam_user"
    assert p.arn == p.iam_arn == "arn:aws:iam::123456789012:user/john.developer"
    assert p.name == "john.developer"
    assert p.access_key_id == "AKIAI123456789EXAMPLE"
    assert p.account == "123456789012"
    assert p.mfa is None
    assert event.action.service == "lambda"
    assert event.action.name == "UpdateFunctionConfiguration20150331v2"
    assert event.time == datetime(2019, 1, 1, tzinfo=UTC)
    assert event.raw.index == 0
    assert event.raw.bucket == "logs"


def test_assumed_role_through_identity_center(panther: list[dict[str, Any]]) -> None:
    p = ct(panther[2]).principal
    assert p.type == "assumed_role"
    assert p.arn == "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DevAdmin_abc123/bob.ross"
    # The issuer keeps its path; the cross-source key drops it, as the EKS authenticator does.
    assert p.session_issuer_arn == (
        "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DevAdmin_abc123"
    )
    assert p.iam_arn == "arn:aws:iam::123456789012:role/AWSReservedSSO_DevAdmin_abc123"
    assert p.session_name == "bob.ross"
    assert p.name == "AWSReservedSSO_DevAdmin_abc123"
    assert p.mfa is False


def test_assumed_role_with_mfa_and_an_error(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[9])
    assert event.principal.type == "assumed_role"
    assert event.principal.mfa is True
    assert event.principal.iam_arn == "arn:aws:iam::123456789012:role/example-role"
    assert event.principal.session_name == "example-user"
    assert not event.outcome.success
    assert event.outcome.error_code == "UnauthorizedOperation"
    assert event.read_only is False  # "Modify…" is not a read prefix


def test_assumed_role_arn_without_session_falls_back_to_the_issuer(
    panther: list[dict[str, Any]],
) -> None:
    p = ct(panther[1]).principal
    assert p.arn == "arn:aws:sts::123456789012:assumed-role/tester"
    assert p.iam_arn == "arn:aws:iam::123456789012:role/tester"
    assert p.mfa is True


def test_federated_user(panther: list[dict[str, Any]]) -> None:
    p = ct(panther[3]).principal
    assert p.type == "federated_user"
    assert p.name == "federated-user"
    assert p.iam_arn == "arn:aws:sts::123456789012:federated-user/federated-user"
    assert p.access_key_id == "ASIA123456789EXAMPLE"


def test_root_console_login_mfa_from_additional_event_data(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[70])
    p = event.principal
    assert p.type == "root"
    assert p.arn == p.iam_arn == "arn:aws:iam::123456789012:root"
    assert p.access_key_id is None  # "" in the record
    assert p.mfa is False  # MFAUsed: "No"
    assert payload(event, "additional_event_data")["MFAUsed"] == "No"


def test_iam_user_console_login_with_mfa(panther: list[dict[str, Any]]) -> None:
    p = ct(panther[50]).principal
    assert (p.type, p.name, p.mfa) == ("iam_user", "anaya", True)


def test_minimal_root(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[34])
    assert event.principal.type == "root"
    assert event.principal.name == "root"
    assert event.time == UNKNOWN_TIME  # no eventTime in this test record


def test_aws_account_with_flattened_resources(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[106])
    p = event.principal
    assert p.type == "aws_account"
    assert p.account == "111122223333"
    assert p.name == p.principal_id == "SAMPLE_PRINCIPAL_ID:lambda-name"
    assert event.read_only is True  # "True" as a string
    assert event.time == datetime(2024, 12, 12, 16, 4, 32, tzinfo=UTC)
    assert len(event.resources) == 1
    assert "SampleRole" in event.resources[0]


def test_aws_service(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[450])
    assert event.principal.type == "aws_service"
    assert event.principal.invoked_by == event.principal.name == "lambda.amazonaws.com"
    assert event.principal.iam_arn is None
    assert event.resources == ("arn:aws:iam::123456789123:role/my_role_arn",)


def test_unknown_and_missing_identity(panther: list[dict[str, Any]]) -> None:
    unknown = ct(panther[449]).principal
    assert (unknown.type, unknown.name) == ("unknown", "<victim display name>")
    missing = next(r for r in panther if r.get("userIdentity") is None)
    assert ct(missing).principal.type == "unknown"


def test_read_only_from_the_name_when_absent(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[33])
    assert event.action.name == "DescribeInstances"
    assert event.read_only is True
    assert event.id == "AWSLogs/x.json.gz#0"  # no eventID in this test record


def test_failed_console_login_without_error_code(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[31])
    assert event.outcome.success is False
    assert event.outcome.error_code is None


def test_every_panther_record_normalizes(panther: list[dict[str, Any]]) -> None:
    types = {ct(record, i).principal.type for i, record in enumerate(panther)}
    assert types == {
        "iam_user",
        "assumed_role",
        "root",
        "aws_service",
        "federated_user",
        "aws_account",
        "unknown",
    }


# --- the identity types the corpus lacks ------------------------------------------------------


BASE: dict[str, Any] = {
    "eventVersion": "1.09",
    "eventTime": "2024-03-04T05:06:07Z",
    "eventSource": "sts.amazonaws.com",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "203.0.113.9",
    "userAgent": "aws-cli/2",
    "eventID": "e-1",
    "eventType": "AwsApiCall",
    "recipientAccountId": "111122223333",
}


def test_saml_user() -> None:
    record = dict(
        BASE,
        eventName="AssumeRoleWithSAML",
        userIdentity={
            "type": "SAMLUser",
            "principalId": "SampleUkh1i4+ExamplexL/jEvs=:alice@example.com",
            "userName": "alice@example.com",
            "identityProvider": "SampleUkh1i4+ExamplexL/jEvs=",
        },
    )
    p = ct(record).principal
    assert p.type == "saml_user"
    assert p.name == "alice@example.com"
    assert p.identity_provider == "SampleUkh1i4+ExamplexL/jEvs="
    assert p.iam_arn is None


def test_web_identity_user() -> None:
    record = dict(
        BASE,
        eventName="AssumeRoleWithWebIdentity",
        userIdentity={
            "type": "WebIdentityUser",
            "principalId": "accounts.google.com:app:1234",
            "userName": "1234",
            "identityProvider": "accounts.google.com",
        },
    )
    p = ct(record).principal
    assert (p.type, p.name, p.identity_provider) == (
        "web_identity_user",
        "1234",
        "accounts.google.com",
    )


def test_identity_center_user() -> None:
    record = dict(
        BASE,
        eventSource="sso.amazonaws.com",
        eventName="ListAccounts",
        userIdentity={
            "type": "IdentityCenterUser",
            "accountId": "111122223333",
            "onBehalfOf": {
                "userId": "544894e8-80c1-707f-60e3-3ba6510dfac1",
                "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-9067642ac7",
            },
            "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE",
        },
    )
    event = ct(record)
    p = event.principal
    assert p.type == "identity_center_user"
    assert p.name == "544894e8-80c1-707f-60e3-3ba6510dfac1"
    assert p.identity_provider.endswith("identitystore/d-9067642ac7")  # type: ignore[union-attr]
    assert event.read_only is True  # derived from "List…"


def test_irsa_role_session_keeps_the_oidc_provider() -> None:
    provider = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
    record = dict(
        BASE,
        eventName="GetObject",
        eventSource="s3.amazonaws.com",
        readOnly=True,
        userIdentity={
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/karpenter/1709500000000",
            "accountId": "111122223333",
            "sessionContext": {
                "sessionIssuer": {"arn": "arn:aws:iam::111122223333:role/karpenter"},
                "webIdFederationData": {"federatedProvider": provider, "attributes": {}},
            },
        },
    )
    p = ct(record).principal
    assert p.identity_provider == provider
    assert p.iam_arn == "arn:aws:iam::111122223333:role/karpenter"


def test_mistyped_identity_is_an_invalid_record() -> None:
    with pytest.raises(InvalidRecordError):
        ct(dict(BASE, eventName="X", userIdentity=["not", "an", "object"]))
    with pytest.raises(InvalidRecordError):
        ct(dict(BASE, eventName=5))
    with pytest.raises(InvalidRecordError):
        ct(b"[1, 2]")


def test_role_arn_from_session_arn() -> None:
    assert (
        role_arn_from_session_arn("arn:aws-cn:sts::1:assumed-role/R/s")
        == "arn:aws-cn:iam::1:role/R"
    )
    assert role_arn_from_session_arn("arn:aws:iam::1:user/u") is None
    assert role_arn_from_session_arn("arn:aws:sts::1:assumed-role/R") is None


# --- Kubernetes --------------------------------------------------------------------------------


def test_eks_user_mapped_to_an_iam_role(panther_k8s: list[dict[str, Any]]) -> None:
    event = k8s(panther_k8s[4])
    p = event.principal
    assert p.type == "k8s_user"
    assert p.k8s_username == p.name == "kubernetes-admin"
    assert p.arn == "arn:aws:sts::123412341234:assumed-role/DevAdministrator/1669660343296132000"
    assert p.iam_arn == "arn:aws:iam::123412341234:role/DevAdministrator"
    assert p.session_issuer_arn == "arn:aws:iam::123412341234:role/DevAdministrator"
    assert p.session_name == "1669660343296132000"
    assert p.access_key_id == "ASIARLIVEKVNN6Y6J5UW"
    assert p.account == "123412341234"
    assert p.principal_id == "AROARLIVEKVNIRVGDLJWJ"
    assert "system:masters" in p.groups
    action = event.action
    assert (action.service, action.name, action.verb) == ("k8s", "get", "get")
    assert (action.resource, action.subresource, action.namespace) == ("pods", "log", "default")
    assert action.object_name == "kube-bench-drn4j"
    assert event.resources == ("namespaces/default/pods/kube-bench-drn4j",)
    assert event.read_only
    assert event.outcome.success
    assert event.outcome.decision == "allow"
    assert event.time == datetime(2022, 11, 29, 0, 9, 4, 380000, tzinfo=UTC)
    assert (event.cluster, event.account, event.source) == ("prod", "123456789012", "eks")


def test_eks_service_account(panther_k8s: list[dict[str, Any]]) -> None:
    p = k8s(panther_k8s[5]).principal
    assert p.type == "k8s_serviceaccount"
    assert p.name == "system:serviceaccount:kube-system:coredns"
    assert p.iam_arn is None


def test_eks_anonymous(panther_k8s: list[dict[str, Any]]) -> None:
    assert k8s(panther_k8s[0]).principal.type == "anonymous"


def test_access_entry_username_is_the_session_arn() -> None:
    event = k8s(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "a-1",
            "verb": "delete",
            "user": {
                "username": "arn:aws:sts::111122223333:assumed-role/ci-deployer/gha-7",
                "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLE",
                "groups": ["system:authenticated"],
            },
            "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
            "responseStatus": {
                "code": 403,
                "status": "Failure",
                "reason": "Forbidden",
                "message": 'secrets "db" is forbidden',
            },
            "annotations": {
                "authorization.k8s.io/decision": "forbid",
                "authorization.k8s.io/reason": "",
            },
            "requestReceivedTimestamp": "2024-03-04T05:06:07.123456Z",
            "stage": "ResponseComplete",
        }
    )
    p = event.principal
    assert p.iam_arn == "arn:aws:iam::111122223333:role/ci-deployer"
    assert p.session_name == "gha-7"
    assert p.principal_id == "AROAEXAMPLE"
    assert not event.read_only
    outcome = event.outcome
    assert (outcome.success, outcome.status_code, outcome.decision) == (False, 403, "forbid")
    assert outcome.error_code == "Forbidden"
    assert event.event_type == "ResponseComplete"


def test_the_same_role_has_one_key_across_sources() -> None:
    cloudtrail = ct(
        dict(
            BASE,
            eventName="DescribeCluster",
            userIdentity={
                "type": "AssumedRole",
                "arn": "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_1/alice",
                "sessionContext": {
                    "sessionIssuer": {
                        "arn": "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/"
                        "AWSReservedSSO_Admin_1"
                    }
                },
            },
        )
    )
    eks = k8s(
        {
            "auditID": "a",
            "verb": "get",
            "user": {
                "username": "alice",
                "extra": {
                    "arn": ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_1/alice"],
                    "canonicalArn": ["arn:aws:iam::111122223333:role/AWSReservedSSO_Admin_1"],
                },
            },
        }
    )
    assert cloudtrail.principal.iam_arn == eks.principal.iam_arn is not None


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (
            {"requestReceivedTimestamp": "2018-10-25T13:58:49.730588Z"},
            datetime(2018, 10, 25, 13, 58, 49, 730588, tzinfo=UTC),
        ),
        ({"timestamp": "2018-10-25T13:58:49Z"}, datetime(2018, 10, 25, 13, 58, 49, tzinfo=UTC)),
        (
            {"stageTimestamp": "2018-10-25T15:58:49+02:00"},
            datetime(2018, 10, 25, 13, 58, 49, tzinfo=UTC),
        ),
        (
            {"metadata": {"creationTimestamp": "2017-09-11T19:55:05Z"}},
            datetime(2017, 9, 11, 19, 55, 5, tzinfo=UTC),
        ),
        ({"requestReceivedTimestamp": "yesterday"}, UNKNOWN_TIME),
        ({}, UNKNOWN_TIME),
    ],
)
def test_k8s_time_sources(stamps: dict[str, Any], expected: datetime) -> None:
    event = k8s({"auditID": "a", "verb": "get", **stamps})
    assert event.time == expected
    assert event.time.tzinfo is not None


# --- serialization and payloads ----------------------------------------------------------------


def test_payloads_are_raw_until_asked_for() -> None:
    record = dict(
        BASE,
        eventName="PutUserPolicy",
        requestParameters={"userName": "bob", "policyDocument": '{"Version":"2012-10-17"}'},
        responseElements=None,
    )
    event = ct(record)
    assert isinstance(event.request_parameters, msgspec.Raw)
    assert payload(event, "request_parameters") == record["requestParameters"]
    assert payload(event, "response_elements") is None  # null is "absent"
    assert payload(event, "request_object") is None


def test_encode_decode_round_trip(
    panther: list[dict[str, Any]], panther_k8s: list[dict[str, Any]]
) -> None:
    events = [ct(r, i) for i, r in enumerate(panther[:50])] + [
        k8s(e, i) for i, e in enumerate(panther_k8s[:30])
    ]
    data = encode_events(events)
    assert data.count(b"\n") == len(events)
    decoded = decode_events(data)
    assert decoded == events
    first = orjson.loads(data.split(b"\n", 1)[0])
    assert first["time"] == "2019-01-01T00:00:00Z"
    assert first["principal"]["type"] == "iam_user"
    assert "request_object" not in first  # absent payloads are omitted


def test_events_are_frozen(panther: list[dict[str, Any]]) -> None:
    event = ct(panther[0])
    with pytest.raises(AttributeError):
        event.id = "other"  # type: ignore[misc]
