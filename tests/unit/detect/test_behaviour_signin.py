"""Failed console sign-ins: spraying from one network, brute force against one user."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from harvester.detect.model import Anomaly, Severity
from harvester.events import Event, normalize_cloudtrail
from tests.unit.detect.builders import ACCOUNT, OTHER, T0, scorer

SPRAYER = "5.188.10."  # one /24, several hosts in it
_ids = itertools.count()


def console_login(
    user: str | None,
    *,
    ip: str,
    when: datetime = T0,
    success: bool = False,
    account: str = ACCOUNT,
    message: str = "Failed authentication",
) -> Event:
    """A ConsoleLogin record as CloudTrail writes it for an IAM user (root when ``user`` is
    None): a failure has errorMessage and {"ConsoleLogin": "Failure"}, and no errorCode."""
    identity: dict[str, Any]
    if user is None:
        identity = {"type": "Root", "principalId": account, "accountId": account}
    else:
        identity = {"type": "IAMUser", "accountId": account, "accessKeyId": "", "userName": user}
        if user != "HIDDEN_DUE_TO_SECURITY_REASONS":
            identity["principalId"] = "AIDACKCEVSQ6C2EXAMPLE"
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": f"login-{next(_ids)}",
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "userIdentity": identity,
        "sourceIPAddress": ip,
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "requestParameters": None,
        "responseElements": {"ConsoleLogin": "Success" if success else "Failure"},
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "No",
        },
        "eventType": "AwsConsoleSignIn",
    }
    if not success:
        record["errorMessage"] = message
    return normalize_cloudtrail(record, bucket="bucket", key="AWSLogs/signin.json.gz", index=0)


def _anomalies(*events: Event) -> dict[str, list[Anomaly]]:
    found: dict[str, list[Anomaly]] = {}
    for anomaly in scorer().score_and_commit(list(events)).anomalies:
        found.setdefault(anomaly.detector, []).append(anomaly)
    return found


def _spray(users: list[str | None], *, account: str = ACCOUNT) -> list[Event]:
    return [
        console_login(
            u, ip=f"{SPRAYER}{10 + i % 3}", when=T0 + timedelta(seconds=20 * i), account=account
        )
        for i, u in enumerate(users)
    ]


def test_failed_sign_ins_for_many_users_from_one_network_are_spraying() -> None:
    users: list[str | None] = ["alice", "bob", "carol", "dave", "erin", "frank"]
    found = _anomalies(*_spray(users))
    (spray,) = found["behav.password-spraying"]
    assert spray.severity is Severity.medium
    assert "Network 5.188.10.0/24: " in spray.explanation
    assert "6 distinct user names" in spray.explanation
    assert f"alice in {ACCOUNT} x1" in spray.explanation
    assert spray.count == 6
    assert spray.mitre_techniques == ("T1110.003",)


def test_a_few_users_failing_from_one_network_are_not_spraying() -> None:
    assert "behav.password-spraying" not in _anomalies(*_spray(["alice", "bob", "carol", "dave"]))


def test_the_same_user_failing_again_adds_no_distinct_name() -> None:
    assert "behav.password-spraying" not in _anomalies(*_spray(["alice", "bob"] * 4))


def test_names_that_do_not_exist_count_one_attempt_each() -> None:
    hidden: list[str | None] = ["HIDDEN_DUE_TO_SECURITY_REASONS"] * 4
    found = _anomalies(*_spray(["alice", None, *hidden]))
    (spray,) = found["behav.password-spraying"]
    assert "4 with user names that do not exist" in spray.explanation
    assert f"root of {ACCOUNT}" in spray.explanation


def test_spraying_counts_users_of_every_account_tried_from_the_network() -> None:
    events = _spray(["alice", "bob", "carol"]) + _spray(["alice", "bob"], account=OTHER)
    (spray,) = _anomalies(*events)["behav.password-spraying"]
    assert f"alice in {OTHER}" in spray.explanation


def test_failures_from_many_networks_are_not_spraying_and_successes_do_not_count() -> None:
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    scattered = [console_login(u, ip=f"81.2.{60 + i}.7") for i, u in enumerate(users)]
    signed_in = [console_login(u, ip=f"{SPRAYER}7", success=True) for u in users]
    found = _anomalies(*scattered, *signed_in)
    assert "behav.password-spraying" not in found
    assert "behav.sign-in-brute-force" not in found


def test_many_failures_of_one_user_are_brute_force_with_the_networks_listed() -> None:
    events = [
        console_login("alice", ip=ip, when=T0 + timedelta(seconds=30 * i))
        for i, ip in enumerate(["81.2.69.7"] * 5 + ["5.188.10.9"] * 3 + ["2001:db8:1::5"])
    ]
    found = _anomalies(*events)
    (brute,) = found["behav.sign-in-brute-force"]
    assert brute.severity is Severity.medium
    assert f"User alice in {ACCOUNT}: 9 failed sign-ins" in brute.explanation
    assert "from 3 network(s)" in brute.explanation
    assert "81.2.69.0/24 x5" in brute.explanation
    assert "behav.password-spraying" not in found


def test_a_user_mistyping_a_password_a_few_times_is_not_brute_force() -> None:
    events = [
        console_login("alice", ip="81.2.69.7", when=T0 + timedelta(minutes=i)) for i in range(5)
    ]
    assert "behav.sign-in-brute-force" not in _anomalies(*events)


def test_hidden_names_are_nobody_to_brute_force() -> None:
    events = [
        console_login("HIDDEN_DUE_TO_SECURITY_REASONS", ip=f"81.2.{60 + i}.7") for i in range(12)
    ]
    assert "behav.sign-in-brute-force" not in _anomalies(*events)
