"""A high-risk call that failed is reported by the rule that reports its success, lower."""

from __future__ import annotations

import pytest

from harvester.detect.features import attempt_of
from harvester.detect.model import Severity
from harvester.detect.rules import CLOUDTRAIL_RULES
from harvester.detect.rules.base import attempt_severity
from tests.unit.detect.builders import (
    ACCOUNT,
    DRY_RUN,
    EC2_UNAUTHORIZED,
    T0,
    ct,
    denied_message,
    detect,
    detectors,
    only,
    role,
    root,
    scorer,
)

_CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s-1"
_TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail"
_SSH_OPEN = {
    "groupId": "sg-0a1b2c3d4e5f60718",
    "ipPermissions": {
        "items": [
            {
                "ipProtocol": "tcp",
                "fromPort": 22,
                "toPort": 22,
                "groups": {},
                "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                "ipv6Ranges": {},
                "prefixListIds": {},
            }
        ]
    },
}


def test_a_refused_stop_logging_is_an_attempt_two_steps_lower() -> None:
    event = ct(
        "StopLogging",
        "cloudtrail",
        params={"name": _TRAIL},
        error="AccessDenied",
        message=denied_message(_CALLER, "cloudtrail:StopLogging", _TRAIL),
    )
    anomaly = only(detect(event), "aws.cloudtrail-logging-impaired")
    assert anomaly.severity is Severity.medium  # critical when it succeeds
    assert anomaly.title.startswith("Attempt:")
    assert "AccessDenied" in anomaly.explanation
    assert "attempt" in anomaly.explanation
    assert anomaly.evidence[0].event_id == event.id


def test_an_unauthorized_security_group_opening_is_reported_low() -> None:
    event = ct(
        "AuthorizeSecurityGroupIngress",
        "ec2",
        params=_SSH_OPEN,
        error="Client.UnauthorizedOperation",
        message=EC2_UNAUTHORIZED,
    )
    anomaly = only(detect(event), "aws.network-opened-to-internet")
    assert anomaly.severity is Severity.low


def test_a_dry_run_is_an_attempt_that_would_have_worked() -> None:
    event = ct(
        "ModifySnapshotAttribute",
        "ec2",
        params={
            "snapshotId": "snap-0123456789abcdef0",
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"group": "all"}]}},
        },
        error="Client.DryRunOperation",
        message=DRY_RUN,
    )
    anomaly = only(detect(event), "aws.snapshot-shared")
    assert anomaly.severity is Severity.medium
    assert "dry run" in anomaly.explanation


def test_a_not_found_target_is_a_weak_attempt() -> None:
    event = ct(
        "DeleteTrail",
        "cloudtrail",
        params={"name": "guessed-trail"},
        error="TrailNotFoundException",
        message="Unknown trail: guessed-trail for the user: " + ACCOUNT,
    )
    # Critical when done, medium when refused, low when the name was wrong.
    assert only(detect(event), "aws.cloudtrail-logging-impaired").severity is Severity.low


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("Client.NetworkInterfaceNotSupported", "rejected"),
        ("InvalidPermission.Duplicate", "rejected"),
        ("MalformedPolicyDocument", "rejected"),
        ("Client.VcpuLimitExceeded", "stopped by a quota"),
        ("InvalidInstanceID.NotFound", "aimed at something that does not exist"),
    ],
)
def test_a_failure_for_what_was_asked_is_an_attempt(code: str, kind: str) -> None:
    event = ct(
        "CreateTrafficMirrorSession", "ec2", params={"networkInterfaceId": "eni-1"}, error=code
    )
    assert attempt_of(event) == kind
    assert "aws.traffic-mirroring" in detectors(event)


def test_a_quota_error_is_an_attempt() -> None:
    event = ct(
        "AuthorizeSecurityGroupIngress",
        "ec2",
        params=_SSH_OPEN,
        error="RulesPerSecurityGroupLimitExceeded",
        message="The maximum number of rules per security group has been reached.",
    )
    assert "aws.network-opened-to-internet" in detectors(event)


@pytest.mark.parametrize(
    "code",
    ["ThrottlingException", "RequestLimitExceeded", "InternalError", "ServiceUnavailableException"],
)
def test_failures_that_say_nothing_of_intent_are_not_attempts(code: str) -> None:
    event = ct("StopLogging", "cloudtrail", params={"name": _TRAIL}, error=code)
    assert attempt_of(event) is None
    assert "aws.cloudtrail-logging-impaired" not in detectors(event)


def test_an_attempt_then_the_deed_is_one_anomaly_at_the_deed_severity() -> None:
    refused = ct("StopLogging", "cloudtrail", params={"name": _TRAIL}, error="AccessDenied")
    done = ct("StopLogging", "cloudtrail", params={"name": _TRAIL}, when=T0.replace(minute=5))
    anomaly = only(detect(refused, done), "aws.cloudtrail-logging-impaired")
    assert anomaly.severity is Severity.critical
    assert anomaly.count == 2
    assert not anomaly.title.startswith("Attempt")


def test_a_refused_routine_call_does_not_make_the_call_itself_routine() -> None:
    params = {"exportTaskIdentifier": "x", "sourceArn": "arn:aws:rds:us-east-1:1:snapshot:s"}
    engine = scorer()
    first = ct("StartExportTask", "rds", params=params, error="AccessDenied")
    then = ct("StartExportTask", "rds", params=params, when=T0.replace(day=T0.day + 2))
    assert "aws.database-export" in {a.detector for a in engine.score_and_commit([first]).anomalies}
    assert "aws.database-export" in {a.detector for a in engine.score_and_commit([then]).anomalies}


def test_rules_that_read_failures_themselves_keep_their_own_reading() -> None:
    # The root rule grades a refused call itself (low, "refused"): not lowered a second time.
    event = ct("CreateUser", "iam", identity=root(), params={"userName": "x"}, error="AccessDenied")
    assert only(detect(event), "aws.root-activity").severity is Severity.low


def test_attempts_are_a_property_of_every_name_indexed_cloudtrail_rule() -> None:
    indexed = [r for r in CLOUDTRAIL_RULES if r.names is not None and r.successes]
    assert indexed
    # Only the sign-in rule opts out: failed sign-ins have rules of their own.
    assert {r.spec.id for r in indexed if not r.failures} == {"aws.console-login-without-mfa"}


@pytest.mark.parametrize(
    ("deed", "attempt"),
    [
        (Severity.critical, Severity.medium),
        (Severity.high, Severity.low),
        (Severity.medium, Severity.low),
        (Severity.low, Severity.info),
    ],
)
def test_attempt_severity(deed: Severity, attempt: Severity) -> None:
    assert attempt_severity(deed) is attempt
    assert attempt_severity(deed, strong=False) is min(attempt, Severity.low, key=lambda s: s.rank)


def test_sign_in_failures_are_left_to_the_sign_in_rules() -> None:
    event = ct(
        "ConsoleLogin",
        "signin",
        identity=role(),
        response={"ConsoleLogin": "Failure"},
        error="AccessDenied",
        additional={"MFAUsed": "No"},
    )
    assert "aws.console-login-without-mfa" not in detectors(event)
