"""Compute rules: running commands on instances and launching instances fit for abuse.

Running commands (SSM Run Command, Session Manager, EC2 Instance Connect, the serial console)
is how an attacker with API access reaches inside an instance and its credentials; GPU and
very large instances are what stolen accounts are used to run (mining, model hosting).
"""

from __future__ import annotations

import re
from typing import Any

from harvester.detect.features import as_list, is_human
from harvester.detect.model import Hit, Severity
from harvester.detect.rules.base import Rule, RuleCatalog, RuleConfig, Subject, base_name
from harvester.detect.rules.params import find, items, pick

__all__ = ["RULES", "instance_family", "launched_types", "unusual_type"]

_CATALOG = RuleCatalog("cloudtrail")
RULES: list[Rule] = _CATALOG.rules
_spec = _CATALOG.spec
rule = _CATALOG.rule


# --- commands on instances ------------------------------------------------------------------------

COMMAND_EXECUTION = _spec(
    "aws.instance-command-execution",
    title="Command or shell run on an instance through AWS",
    severity=Severity.medium,
    tactics=["TA0002", "TA0008"],
    techniques=["T1651", "T1021.004"],
    description=(
        "SSM SendCommand or StartSession, EC2 Instance Connect SendSSHPublicKey or the serial "
        "console's SendSerialConsoleSSHPublicKey: a shell on an instance from the AWS API, with "
        "the instance's own credentials within reach. Shell documents and the serial console "
        "weigh more; many instances at once more still."
    ),
)

# Documents that run what the caller wrote, as opposed to AWS's fixed maintenance tasks.
_SHELL_DOCUMENTS = re.compile(
    r"RunShellScript|RunPowerShellScript|RunRemoteScript|StartInteractiveCommand|"
    r"StartPortForwardingSession|StartSSHSession|InteractiveCommand",
    re.I,
)
_MANY_INSTANCES = 5


def _targets(p: dict[str, Any]) -> tuple[list[str], str]:
    """The instances a command names, and a word for tag or whole-fleet targets."""
    instances = [str(i) for i in items(pick(p, "instanceIds"))]
    wide = ""
    for target in items(pick(p, "targets")):
        key = str(pick(target, "key") or "")
        values = [str(v) for v in items(pick(target, "values"))]
        if key.lower() == "instanceids":
            instances.extend(values)
        elif values:
            wide = f"targets {key}={','.join(values[:3])}"
    return instances, wide


def _send_command(s: Subject) -> Hit:
    p = s.params
    document = str(pick(p, "documentName") or "?")
    instances, wide = _targets(p)
    shell = bool(_SHELL_DOCUMENTS.search(document))
    where = wide or (
        f"on {instances[0]}" if len(instances) == 1 else f"on {len(instances)} instances"
    )
    severity = Severity.medium if shell else Severity.low
    if wide or len(instances) >= _MANY_INSTANCES:
        severity = severity.raised(1)
    return Hit(
        summary=s.called(f"running document {document} {where}"),
        severity=severity,
        routine_key=f"SendCommand:{document.lower()}",
    )


@rule(
    COMMAND_EXECUTION,
    names=["SendCommand", "StartSession", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"],
)
def _command_execution(s: Subject, cfg: RuleConfig) -> Hit | None:
    event = s.event
    if event.principal.type == "aws_service" or event.principal.invoked_by:
        return None  # AWS running its own automation (patching, State Manager)
    name = base_name(event.action.name)
    service = event.action.service
    p = s.params
    if name == "SendCommand" and service == "ssm":
        return _send_command(s)
    if name == "StartSession" and service == "ssm":
        target = pick(p, "target") or "?"
        document = pick(p, "documentName")
        detail = f"opening a session on {target}" + (f" with {document}" if document else "")
        severity = Severity.low if is_human(event.principal) else Severity.medium
        return Hit(summary=s.called(detail), severity=severity, routine_key="StartSession")
    if service != "ec2-instance-connect":
        return None
    instance = pick(p, "instanceId") or "?"
    if name == "SendSerialConsoleSSHPublicKey":
        return Hit(
            summary=s.called(f"pushing an SSH key to the serial console of {instance}"),
            severity=Severity.high,
        )
    user = pick(p, "instanceOSUser") or "?"
    return Hit(
        summary=s.called(f"pushing a one-time SSH key for {user} to {instance}"),
        routine_key=f"SendSSHPublicKey:{str(user).lower()}",
    )


# --- unusual instance types -----------------------------------------------------------------------

UNUSUAL_TYPE = _spec(
    "aws.unusual-instance-type-launched",
    title="GPU, accelerated or very large instances launched",
    severity=Severity.medium,
    tactics=["TA0040"],
    techniques=["T1496"],
    description=(
        "Instances with GPUs or other accelerators, or of the largest sizes, were launched or "
        "requested: what stolen accounts are used for (mining, hosting models). Refusals and "
        "quota errors (VcpuLimitExceeded) are reported as attempts."
    ),
)

# Families with GPUs or other accelerators (training, inference, FPGAs, video transcoding).
_ACCELERATED = re.compile(r"^(p\d|g\d|gr\d|inf\d|trn\d|dl\d|f\d|vt\d)", re.I)
_HUGE_SIZE = re.compile(r"\.(metal(-\d+xl)?|(2[4-9]|[3-9]\d|\d{3,})xlarge)$", re.I)
_LAUNCHES = ("RunInstances", "RequestSpotInstances", "RequestSpotFleet", "CreateFleet")


def instance_family(instance_type: str) -> str:
    """``p4d.24xlarge`` → ``p4d``."""
    return instance_type.split(".", 1)[0].lower()


def unusual_type(instance_type: str) -> str | None:
    """Why a type is worth a look (``GPU/accelerated``, ``very large``), or None."""
    if _ACCELERATED.match(instance_type):
        return "GPU/accelerated"
    if _HUGE_SIZE.search(instance_type):
        return "very large"
    return None


def launched_types(params: Any, response: Any) -> list[str]:
    """The instance types a launch, fleet, spot request or launch template names."""
    found: list[str] = []
    for source in (params, response):
        for value in find(source, "instanceType"):
            # Recorded as text, or as {"value": text} by some SDKs.
            named = pick(value, "value") if isinstance(value, dict) else value
            for text in as_list(named):
                if isinstance(text, str) and text and text not in found:
                    found.append(text)
    return found


def _count(s: Subject) -> int:
    counts = [pick(item, "maxCount", "minCount") for item in items(pick(s.params, "instancesSet"))]
    counts.append(pick(s.params, "instanceCount"))
    total = 0
    for value in counts:
        try:
            total += int(value)
        except (TypeError, ValueError):
            continue
    return max(total, 1)


@rule(UNUSUAL_TYPE, names=_LAUNCHES)
def _unusual_type(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "ec2":
        return None
    types = launched_types(s.params, s.response)
    flagged = [(t, why) for t in types if (why := unusual_type(t)) is not None]
    if not flagged:
        return None
    kinds = ", ".join(f"{t} ({why})" for t, why in flagged)
    count = _count(s)
    severity = Severity.high if count >= 10 else None
    return Hit(
        summary=s.called(f"asking for {count} instance(s) of type {kinds}"),
        severity=severity,
        discriminator=instance_family(flagged[0][0]),
        routine_key=f"type:{instance_family(flagged[0][0])}",
    )
