"""Incidents: an identity's anomalies that read as an attack chain, across both sources."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from harvester.detect.incidents import build_incidents, chain_stages
from harvester.detect.model import Anomaly, Severity
from tests.unit.detect.builders import T0, ct, detect, k8s, scorer, sso

_SSO_ARN = (
    "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/pat@example.com"
)


def _one(*events: object) -> Anomaly:
    (anomaly,) = detect(*events)  # type: ignore[arg-type]
    return anomaly


def _k8s_pat() -> dict[str, object]:
    return {
        "username": "pat@example.com",
        "extra": {
            "arn": [_SSO_ARN],
            "canonicalArn": ["arn:aws:iam::111122223333:role/AWSReservedSSO_Dev_0123456789abcdef"],
            "sessionName": ["pat@example.com"],
        },
    }


def _chain() -> list[Anomaly]:
    s = scorer()
    recon = [
        ct("ListUsers", "iam", identity=sso(), error="AccessDenied", when=T0 + timedelta(seconds=i))
        for i in range(35)
    ]
    key = ct(
        "CreateAccessKey",
        identity=sso(),
        params={"userName": "bob"},
        when=T0 + timedelta(minutes=10),
    )
    shell = k8s(
        "create",
        "pods",
        namespace="kube-system",
        name="aws-node-1",
        subresource="exec",
        code=101,
        user=_k8s_pat(),
        when=T0 + timedelta(minutes=20),
    )
    stop = ct(
        "StopLogging",
        "cloudtrail",
        identity=sso(),
        params={"name": "t"},
        when=T0 + timedelta(minutes=30),
    )
    return s.score_and_commit([*recon, key, shell, stop]).anomalies


def test_a_recon_persistence_evasion_chain_is_one_incident() -> None:
    anomalies = _chain()
    (incident,) = build_incidents(anomalies)
    assert incident.identity.endswith("/pat@example.com")
    assert len(incident.anomaly_ids) == len(anomalies) == 4
    assert incident.severity is Severity.critical
    assert incident.tactics[0] == "TA0007"
    assert {"TA0003", "TA0005", "TA0002"} <= set(incident.tactics)
    assert "reconnaissance / initial access → persistence / privilege escalation → defense " in (
        incident.explanation
    )
    # The Kubernetes exec is part of it: one identity across CloudTrail and EKS.
    assert any(a.cluster == "prod" for a in anomalies if a.id in incident.anomaly_ids)


def test_no_incident_out_of_order_or_out_of_window() -> None:
    anomalies = _chain()
    by_detector = {a.detector: a for a in anomalies}
    recon = by_detector["behav.access-denied-burst"]
    evasion = by_detector["aws.cloudtrail-logging-impaired"]
    late = msgspec.structs.replace(recon, first_seen=evasion.first_seen + timedelta(minutes=5))
    assert build_incidents([late, evasion]) == []
    far = msgspec.structs.replace(evasion, first_seen=recon.first_seen + timedelta(hours=2))
    assert build_incidents([recon, far]) == []
    assert len(build_incidents([recon, far], window=timedelta(hours=3))) == 1


def test_low_severity_stages_alone_make_no_incident() -> None:
    anomalies = _chain()
    lowered = [msgspec.structs.replace(a, severity=Severity.low) for a in anomalies]
    assert build_incidents(lowered) == []


def test_other_identities_do_not_join() -> None:
    recon, *_ = _chain()
    mine = _one(
        ct("StopLogging", "cloudtrail", params={"name": "t"}, when=T0 + timedelta(minutes=5))
    )
    assert build_incidents([recon, mine]) == []


def test_chain_stages_is_the_longest_rising_run() -> None:
    anomalies = sorted(_chain(), key=lambda a: a.first_seen)
    assert chain_stages(anomalies) == [1, 2, 3]
    assert chain_stages(list(reversed(anomalies[2:]))) == [2, 3]


def test_two_early_stages_of_medium_anomalies_are_not_an_incident() -> None:
    by_detector = {a.detector: a for a in _chain()}
    recon = by_detector["behav.access-denied-burst"]
    key = msgspec.structs.replace(
        by_detector["aws.iam-access-key-for-other-user"], severity=Severity.medium
    )
    assert build_incidents([recon, key]) == []
    evasion = msgspec.structs.replace(
        by_detector["aws.cloudtrail-logging-impaired"], severity=Severity.medium
    )
    assert len(build_incidents([recon, evasion])) == 1
