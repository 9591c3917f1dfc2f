"""Commands run on instances through AWS, and GPU or very large instances launched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harvester.detect.model import Severity
from harvester.detect.rules.compute_exec import unusual_type
from harvester.events import Event
from tests.unit.detect.builders import (
    EC2_UNAUTHORIZED,
    T0,
    ct,
    detect,
    detectors,
    only,
    role,
    scorer,
    sso,
)

Make = Callable[[], Event]

_INSTANCE = "i-0a1b2c3d4e5f60718"
# SSM records the command's parameters as hidden.
_SHELL = {
    "instanceIds": [_INSTANCE],
    "documentName": "AWS-RunShellScript",
    "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
    "interactive": False,
}
_SSH_KEY = {
    "instanceId": _INSTANCE,
    "instanceOSUser": "ec2-user",
    "sSHPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyMaterial",
}
_SSM_SERVICE = {"type": "AWSService", "invokedBy": "ssm.amazonaws.com"}


def _launch(instance_type: Any, count: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "instanceType": instance_type,
        "instancesSet": {
            "items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": count}]
        },
        "blockDeviceMapping": {},
        "monitoring": {"enabled": False},
        "disableApiTermination": False,
        **extra,
    }


# detector id: (positive, negative), run with every rule's in test_rules.py
CASES: dict[str, tuple[Make, Make]] = {
    "aws.instance-command-execution": (
        lambda: ct("SendCommand", "ssm", params=_SHELL),
        lambda: ct("SendCommand", "ssm", params=_SHELL, identity=_SSM_SERVICE),
    ),
    "aws.unusual-instance-type-launched": (
        lambda: ct("RunInstances", "ec2", params=_launch("p4d.24xlarge")),
        lambda: ct("RunInstances", "ec2", params=_launch("m5.large")),
    ),
}


@pytest.mark.parametrize(
    ("name", "service", "params", "severity"),
    [
        ("SendCommand", "ssm", _SHELL, Severity.medium),
        (
            "SendCommand",
            "ssm",
            {"instanceIds": [_INSTANCE], "documentName": "AWS-RunPatchBaseline"},
            Severity.low,
        ),
        (
            "SendCommand",
            "ssm",
            {
                "targets": [{"key": "tag:Environment", "values": ["prod"]}],
                "documentName": "AWS-RunShellScript",
                "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS",
            },
            Severity.high,
        ),
        (
            "SendCommand",
            "ssm",
            {
                "instanceIds": [f"i-0{n:016x}" for n in range(6)],
                "documentName": "AWS-RunShellScript",
            },
            Severity.high,
        ),
        ("StartSession", "ssm", {"target": _INSTANCE}, Severity.medium),
        ("SendSSHPublicKey", "ec2-instance-connect", _SSH_KEY, Severity.medium),
        (
            "SendSerialConsoleSSHPublicKey",
            "ec2-instance-connect",
            {"instanceId": _INSTANCE, "serialPort": 0, "sSHPublicKey": "ssh-rsa AAAAB3Nza"},
            Severity.high,
        ),
    ],
)
def test_command_execution_severity(
    name: str, service: str, params: dict[str, Any], severity: Severity
) -> None:
    event = ct(name, service, params=params, response={"requestId": "r", "success": True})
    assert only(detect(event), "aws.instance-command-execution").severity is severity


def test_a_person_opening_a_session_is_lower_than_a_workload() -> None:
    event = ct("StartSession", "ssm", identity=sso(), params={"target": _INSTANCE})
    assert only(detect(event), "aws.instance-command-execution").severity is Severity.low


def test_a_refused_ssh_key_push_is_an_attempt() -> None:
    event = ct(
        "SendSSHPublicKey",
        "ec2-instance-connect",
        params=_SSH_KEY,
        error="AccessDenied",
        message="User is not authorized to perform: ec2-instance-connect:SendSSHPublicKey",
    )
    anomaly = only(detect(event), "aws.instance-command-execution")
    assert anomaly.severity is Severity.low
    assert anomaly.title.startswith("Attempt")


def test_repeated_commands_of_one_document_by_one_principal_are_learned() -> None:
    engine = scorer()
    first = ct("SendCommand", "ssm", params=_SHELL, identity=role("ops"))
    again = ct("SendCommand", "ssm", params=_SHELL, identity=role("ops"), when=T0.replace(day=9))
    assert engine.score_and_commit([first]).anomalies
    # Done before by this principal: graded down (harvester.detect.routine), not dropped.
    repeat = only(engine.score_and_commit([again]).anomalies, "aws.instance-command-execution")
    assert repeat.severity is Severity.low
    assert "It did this before" in repeat.explanation


@pytest.mark.parametrize(
    ("instance_type", "why"),
    [
        ("p2.xlarge", "GPU/accelerated"),
        ("g5.12xlarge", "GPU/accelerated"),
        ("inf2.48xlarge", "GPU/accelerated"),
        ("trn1.32xlarge", "GPU/accelerated"),
        ("c5.metal", "very large"),
        ("m7i.48xlarge", "very large"),
        ("x2iedn.32xlarge", "very large"),
        ("m5.large", None),
        ("t3.micro", None),
        ("c6i.16xlarge", None),
    ],
)
def test_unusual_types(instance_type: str, why: str | None) -> None:
    assert unusual_type(instance_type) == why


@pytest.mark.parametrize(
    ("name", "params"),
    [
        # Some SDKs record the type as {"value": ...}.
        ("RunInstances", _launch({"value": "g4dn.xlarge"})),
        (
            "RequestSpotInstances",
            {"instanceCount": 4, "launchSpecification": {"instanceType": "p3.8xlarge"}},
        ),
        (
            "CreateFleet",
            {
                "CreateFleetRequest": {
                    "LaunchTemplateConfigs": {
                        "Overrides": [{"InstanceType": "g5.48xlarge", "tag": 1}],
                    },
                    "TargetCapacitySpecification": {"TotalTargetCapacity": 2},
                }
            },
        ),
    ],
)
def test_instance_types_are_found_however_the_launch_nests_them(
    name: str, params: dict[str, Any]
) -> None:
    assert "aws.unusual-instance-type-launched" in detectors(ct(name, "ec2", params=params))


def test_a_launch_template_type_is_read_from_the_response() -> None:
    event = ct(
        "RunInstances",
        "ec2",
        params={"launchTemplate": {"launchTemplateId": "lt-0622a7ff26539376a", "version": "4"}},
        response={
            "instancesSet": {"items": [{"instanceId": _INSTANCE, "instanceType": "p5.48xlarge"}]}
        },
    )
    assert "aws.unusual-instance-type-launched" in detectors(event)


def test_many_gpu_instances_are_high_and_a_quota_refusal_is_an_attempt() -> None:
    many = ct("RunInstances", "ec2", params=_launch("p3.16xlarge", count=20))
    refused = ct(
        "RunInstances",
        "ec2",
        params=_launch("p3.16xlarge", count=20),
        error="Client.VcpuLimitExceeded",
        message="You have requested more vCPU capacity than your current vCPU limit of 0 allows",
    )
    unauthorized = ct(
        "RunInstances",
        "ec2",
        params=_launch("g5.xlarge"),
        error="Client.UnauthorizedOperation",
        message=EC2_UNAUTHORIZED,
    )
    assert only(detect(many), "aws.unusual-instance-type-launched").severity is Severity.high
    quota = only(detect(refused), "aws.unusual-instance-type-launched")
    assert quota.severity is Severity.low
    assert "VcpuLimitExceeded" in quota.explanation
    assert only(detect(unauthorized), "aws.unusual-instance-type-launched").severity is Severity.low
