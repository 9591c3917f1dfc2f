"""Sensitive kinds of action per principal, first model use, instance credentials, bursts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from harvester.detect.behaviour_sensitive import category_of
from harvester.detect.engine import Scorer
from harvester.detect.model import Anomaly, Severity
from harvester.events import Event
from tests.unit.detect.builders import (
    ACCOUNT,
    T0,
    ct,
    denied_message,
    instance,
    role,
    scorer,
    user,
)

NAT = "81.2.69.10"
ATTACKER = "5.188.10.99"
LATER = T0 + timedelta(days=9)


def _train(s: Scorer, make: Callable[[datetime], Event], days: int = 8) -> None:
    events = [make(T0 + timedelta(days=d, hours=h)) for d in range(days) for h in (1, 5)]
    s.score_and_commit(events)


def _by_detector(s: Scorer, *events: Event) -> dict[str, Anomaly]:
    return {a.detector: a for a in s.score_and_commit(list(events)).anomalies}


# --- categories -----------------------------------------------------------------------------------


def test_categories_depend_on_what_the_call_does() -> None:
    assert category_of(ct("GetSecretValue", "secretsmanager")) == "secret read"
    assert category_of(ct("BatchGetSecretValue", "secretsmanager")) == "secret read"
    decrypt = {"name": "/app/db", "withDecryption": True}
    assert category_of(ct("GetParameter", "ssm", params=decrypt)) == "parameter decryption"
    assert category_of(ct("GetParameter", "ssm", params={"name": "/app/color"})) is None
    user_data = {"instanceId": "i-0a1b2c3d4e5f60718", "attribute": "userData"}
    assert category_of(ct("DescribeInstanceAttribute", "ec2", params=user_data)) == (
        "instance user data read"
    )
    other = {"instanceId": "i-0a1b2c3d4e5f60718", "attribute": "instanceType"}
    assert category_of(ct("DescribeInstanceAttribute", "ec2", params=other)) is None
    assert category_of(ct("ListBuckets", "s3")) is None


def test_a_first_secret_read_after_the_learning_period_is_reported_once_per_kind() -> None:
    s = scorer()
    _train(s, lambda t: ct("ListBuckets", "s3", identity=role("reporting"), when=t))
    first = ct("GetSecretValue", "secretsmanager", identity=role("reporting"), when=LATER)
    anomaly = _by_detector(s, first)["behav.new-sensitive-category"]
    assert anomaly.severity is Severity.low
    assert "secret read" in anomaly.explanation
    again = ct(
        "BatchGetSecretValue",
        "secretsmanager",
        identity=role("reporting"),
        when=LATER.replace(hour=12),
    )
    assert "behav.new-sensitive-category" not in _by_detector(s, again)


def test_weighty_kinds_are_medium() -> None:
    s = scorer()
    _train(s, lambda t: ct("ListBuckets", "s3", identity=role("reporting"), when=t))
    password = ct(
        "GetPasswordData",
        "ec2",
        identity=role("reporting"),
        params={"instanceId": "i-0a1b2c3d"},
        when=LATER,
    )
    assert _by_detector(s, password)["behav.new-sensitive-category"].severity is Severity.medium


def test_no_kind_is_new_while_the_baseline_is_learned() -> None:
    s = scorer()
    _train(s, lambda t: ct("ListBuckets", "s3", identity=role("reporting"), when=t), days=2)
    event = ct(
        "GetSecretValue", "secretsmanager", identity=role("reporting"), when=T0 + timedelta(days=2)
    )
    assert "behav.new-sensitive-category" not in _by_detector(s, event)


# --- first model invocation ----------------------------------------------------------------------

_CLAUDE = {"modelId": "anthropic.claude-3-haiku-20240307-v1:0"}


def test_a_long_lived_key_invoking_a_model_is_medium_even_unlearned() -> None:
    s = scorer()
    event = ct("InvokeModel", "bedrock", identity=user("ci-bot"), params=_CLAUDE)
    anomaly = _by_detector(s, event)["behav.first-model-invocation"]
    assert anomaly.severity is Severity.medium
    assert "anthropic.claude-3-haiku" in anomaly.explanation


def test_a_role_invoking_a_model_for_the_first_time_after_learning_is_low() -> None:
    s = scorer()
    _train(s, lambda t: ct("ListBuckets", "s3", identity=role("app"), when=t))
    converse = ct("Converse", "bedrock", identity=role("app"), params=_CLAUDE, when=LATER)
    assert _by_detector(s, converse)["behav.first-model-invocation"].severity is Severity.low
    again = ct(
        "InvokeModel", "bedrock", identity=role("app"), params=_CLAUDE, when=LATER.replace(hour=20)
    )
    assert "behav.first-model-invocation" not in _by_detector(s, again)


def test_a_refused_invocation_is_reported_as_tried() -> None:
    event = ct(
        "InvokeModel",
        "bedrock",
        identity=user("ci-bot"),
        params=_CLAUDE,
        error="AccessDeniedException",
        message="You don't have access to the model with the specified model ID.",
    )
    anomaly = _by_detector(scorer(), event)["behav.first-model-invocation"]
    assert anomaly.severity is Severity.low
    assert "tried to invoke" in anomaly.explanation


# --- instance credentials off the instance --------------------------------------------------------


def test_instance_credentials_from_a_network_no_instance_of_the_account_used() -> None:
    s = scorer()
    _train(
        s,
        lambda t: ct(
            "GetObject", "s3", identity=instance("app", "i-0aaaaaaaaaaaaaaa1"), ip=NAT, when=t
        ),
    )
    stolen = ct(
        "ListBuckets",
        "s3",
        identity=instance("app", "i-0aaaaaaaaaaaaaaa1"),
        ip=ATTACKER,
        when=LATER,
    )
    anomaly = _by_detector(s, stolen)["aws.instance-credentials-off-instance"]
    assert anomaly.severity is Severity.high
    assert "5.188.10.0/24" in anomaly.explanation


def test_a_new_instance_or_role_behind_the_accounts_nat_is_quiet() -> None:
    s = scorer()
    _train(
        s,
        lambda t: ct(
            "GetObject", "s3", identity=instance("app", "i-0aaaaaaaaaaaaaaa1"), ip=NAT, when=t
        ),
    )
    other = ct(
        "GetObject", "s3", identity=instance("batch", "i-0bbbbbbbbbbbbbbb2"), ip=NAT, when=LATER
    )
    assert "aws.instance-credentials-off-instance" not in _by_detector(s, other)


def test_sessions_that_are_not_instances_are_not_judged_as_instances() -> None:
    s = scorer()
    _train(
        s,
        lambda t: ct(
            "GetObject", "s3", identity=instance("app", "i-0aaaaaaaaaaaaaaa1"), ip=NAT, when=t
        ),
    )
    person = ct("GetObject", "s3", identity=role("app", "deploy-42"), ip=ATTACKER, when=LATER)
    assert "aws.instance-credentials-off-instance" not in _by_detector(s, person)


# --- bursts ---------------------------------------------------------------------------------------


def _user_data(n: int, *, instance_id: str | None = None) -> Event:
    params = {"instanceId": instance_id or f"i-0{n:016x}", "attribute": "userData"}
    return ct(
        "DescribeInstanceAttribute", "ec2", params=params, when=T0 + timedelta(seconds=20 * n)
    )


def test_user_data_read_across_many_instances() -> None:
    s = scorer()
    found = _by_detector(s, *[_user_data(n) for n in range(12)])
    anomaly = found["aws.userdata-read-burst"]
    assert anomaly.severity is Severity.high
    assert anomaly.count == 12


def test_user_data_read_again_and_again_of_one_instance_is_not_a_burst() -> None:
    found = _by_detector(
        scorer(), *[_user_data(n, instance_id="i-0aaaaaaaaaaaaaaa1") for n in range(12)]
    )
    assert "aws.userdata-read-burst" not in found


_CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s-1"


def _denied(name: str, service: str, n: int, **params: object) -> Event:
    return ct(
        name,
        service,
        params=params,
        error="AccessDenied" if service != "secretsmanager" else "AccessDeniedException",
        message=denied_message(_CALLER, f"{service}:{name}", "*"),
        when=T0 + timedelta(seconds=15 * n),
    )


def test_high_risk_calls_refused_across_many_resources_are_one_anomaly_listing_them() -> None:
    events = [
        _denied("GetSecretValue", "secretsmanager", n, secretId=f"prod/db-{n}") for n in range(5)
    ]
    events += [
        _denied("GetPasswordData", "ec2", 5 + n, instanceId=f"i-0{n:016x}") for n in range(5)
    ]
    anomaly = _by_detector(scorer(), *events)["behav.high-risk-denied-burst"]
    assert anomaly.count == 10
    assert "secretsmanager:GetSecretValue prod/db-0" in anomaly.explanation
    assert {e.action for e in anomaly.evidence} == {
        "secretsmanager:GetSecretValue",
        "ec2:GetPasswordData",
    }


def test_refused_ordinary_calls_or_one_resource_again_are_not_this_burst() -> None:
    ordinary = [_denied("DescribeVolumes", "ec2", n, volumeId=f"vol-{n}") for n in range(10)]
    same = [_denied("GetSecretValue", "secretsmanager", n, secretId="prod/db") for n in range(10)]
    assert "behav.high-risk-denied-burst" not in _by_detector(scorer(), *ordinary)
    assert "behav.high-risk-denied-burst" not in _by_detector(scorer(), *same)


# --- instance type families new to an account -----------------------------------------------------


def _run(instance_type: str, when: datetime, **extra: Any) -> Event:
    params = {
        "instanceType": instance_type,
        "instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1}]},
    }
    return ct("RunInstances", "ec2", identity=role("deployer"), params=params, when=when, **extra)


def _trained_account() -> Scorer:
    s = scorer()
    _train(s, lambda t: _run("m6i.large", t))
    return s


def test_an_accelerated_family_new_to_the_account_is_medium() -> None:
    anomaly = _by_detector(_trained_account(), _run("p5.48xlarge", LATER))
    found = anomaly["behav.new-instance-family"]
    assert found.severity is Severity.medium
    assert "GPU/accelerated instance family p5, new to account" in found.explanation
    assert "1 other instance family" in found.explanation


def test_an_ordinary_family_new_to_the_account_is_low_and_reported_once() -> None:
    s = _trained_account()
    assert _by_detector(s, _run("c7i.xlarge", LATER))["behav.new-instance-family"].severity is (
        Severity.low
    )
    again = _run("c7i.2xlarge", LATER + timedelta(days=1))
    assert "behav.new-instance-family" not in _by_detector(s, again)
    known = _run("m6i.24xlarge", LATER + timedelta(days=1))
    assert "behav.new-instance-family" not in _by_detector(s, known)


def test_no_family_is_new_while_the_account_is_learned() -> None:
    s = scorer()
    _train(s, lambda t: _run("m6i.large", t), days=2)
    soon = _run("p5.48xlarge", T0 + timedelta(days=2, hours=3))
    assert "behav.new-instance-family" not in _by_detector(s, soon)


def test_a_launch_template_with_a_new_family_counts() -> None:
    template = ct(
        "CreateLaunchTemplate",
        "ec2",
        identity=role("deployer"),
        params={
            "CreateLaunchTemplateRequest": {
                "LaunchTemplateName": "workers",
                "LaunchTemplateData": {
                    "ImageId": "ami-0abcdef1234567890",
                    "InstanceType": "g6.xlarge",
                },
            }
        },
        when=LATER,
    )
    found = _by_detector(_trained_account(), template)["behav.new-instance-family"]
    assert found.severity is Severity.medium
    assert "g6.xlarge" in found.explanation


def test_a_launch_stopped_by_a_quota_is_a_low_attempt() -> None:
    refused = _run(
        "trn1.32xlarge",
        LATER,
        error="Client.VcpuLimitExceeded",
        message="You have requested more vCPU capacity than your current vCPU limit of 0 allows",
    )
    found = _by_detector(_trained_account(), refused)["behav.new-instance-family"]
    assert found.severity is Severity.low
    assert "an attempt, stopped by a quota" in found.explanation


def test_autoscaling_launching_from_a_template_is_learned_not_reported() -> None:
    s = _trained_account()
    autoscaling = role("AWSServiceRoleForAutoScaling", "AutoScaling")
    autoscaling["invokedBy"] = "autoscaling.amazonaws.com"
    params = {"instanceType": "r7g.large", "instancesSet": {"items": [{"minCount": 1}]}}
    launch = ct("RunInstances", "ec2", identity=autoscaling, params=params, when=LATER)
    assert "behav.new-instance-family" not in _by_detector(s, launch)
    by_hand = _run("r7g.xlarge", LATER + timedelta(hours=2))
    assert "behav.new-instance-family" not in _by_detector(s, by_hand)
