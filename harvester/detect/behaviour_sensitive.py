"""Behavioural detectors of sensitive activity, declared with the families of ``behaviour``.

* ``behav.new-sensitive-category``: the first time a principal does anything of a sensitive
  *category* (reads a secret, decrypts parameters, reads password data or user data, creates
  credentials, changes logging, gets a shell on an instance), whatever the API: stolen
  credentials are used for what their owner never did, at modest volume.
* ``behav.first-model-invocation``: the first model invocation of a principal.
* ``aws.instance-credentials-off-instance``: an instance profile session used from a public
  network no instance of its account had used (instances reach AWS through their NAT
  gateways' or their own addresses, which the account's baseline learns).
* ``behav.new-instance-family``: an instance type family (p5, g6, inf2, m7i…) launched,
  requested or put in a launch template for the first time in an account.
* ``aws.userdata-read-burst``: user data read across many instances.
* ``behav.high-risk-denied-burst``: high-risk calls refused across many resources.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from harvester.detect.behaviour import (
    Baseline,
    Burst,
    Facts,
    Novelty,
    Observation,
    behaviour_spec,
)
from harvester.detect.features import (
    action_label,
    attempt_of,
    display_principal,
    error_is_denied,
)
from harvester.detect.model import Hit, Severity
from harvester.detect.rules import CLOUDTRAIL_RULES
from harvester.detect.rules.compute_exec import instance_family, launched_types, unusual_type
from harvester.detect.rules.params import pick, truthy
from harvester.events import Event, payload

__all__ = ["MORE_BURSTS", "MORE_NOVELTIES", "category_of"]


# --- sensitive categories -------------------------------------------------------------------------

_SECRET_READ = "secret read"  # noqa: S105 (a category's name, not a secret)
_DECRYPT = "parameter decryption"
_PASSWORD_READ = "instance password data read"  # noqa: S105 (a category's name)
_USER_DATA = "instance user data read"
_CREDENTIALS = "credential creation"
_LOGGING = "logging or monitoring change"
_SHELL = "shell on an instance"
_PERMISSIONS = "permission change"

_CATEGORIES: dict[tuple[str, str], str] = {
    **{("secretsmanager", n): _SECRET_READ for n in ("GetSecretValue", "BatchGetSecretValue")},
    ("ec2", "GetPasswordData"): _PASSWORD_READ,
    **{
        ("iam", n): _CREDENTIALS
        for n in (
            "CreateAccessKey",
            "CreateLoginProfile",
            "UpdateLoginProfile",
            "CreateServiceSpecificCredential",
            "UploadSSHPublicKey",
            "UploadSigningCertificate",
        )
    },
    ("sts", "GetFederationToken"): _CREDENTIALS,
    **{
        ("cloudtrail", n): _LOGGING
        for n in (
            "StopLogging",
            "DeleteTrail",
            "UpdateTrail",
            "PutEventSelectors",
            "DeleteEventDataStore",
        )
    },
    **{
        ("guardduty", n): _LOGGING
        for n in ("DeleteDetector", "UpdateDetector", "DisassociateMembers", "CreateFilter")
    },
    **{
        ("config", n): _LOGGING
        for n in ("StopConfigurationRecorder", "DeleteConfigurationRecorder")
    },
    ("ec2", "DeleteFlowLogs"): _LOGGING,
    ("logs", "DeleteLogGroup"): _LOGGING,
    ("bedrock", "DeleteModelInvocationLoggingConfiguration"): _LOGGING,
    ("ssm", "SendCommand"): _SHELL,
    ("ssm", "StartSession"): _SHELL,
    ("ec2-instance-connect", "SendSSHPublicKey"): _SHELL,
    ("ec2-instance-connect", "SendSerialConsoleSSHPublicKey"): _SHELL,
    **{
        ("iam", n): _PERMISSIONS
        for n in (
            "AttachUserPolicy",
            "AttachRolePolicy",
            "PutUserPolicy",
            "PutRolePolicy",
            "CreatePolicyVersion",
            "UpdateAssumeRolePolicy",
            "AddUserToGroup",
        )
    },
}
# Calls whose category depends on a parameter: their parameters are read, no others'.
_PARAMETER_READS = frozenset(("GetParameter", "GetParameters", "GetParametersByPath"))
_WEIGHTY = frozenset((_PASSWORD_READ, _CREDENTIALS, _LOGGING))
# Every name that may have a category: one set lookup settles most events.
_NAMES = frozenset(
    {name for _, name in _CATEGORIES} | _PARAMETER_READS | {"DescribeInstanceAttribute"}
)


def _params(event: Event) -> dict[str, Any]:
    value = payload(event, "request_parameters")
    return value if isinstance(value, dict) else {}


def category_of(event: Event) -> str | None:
    """The sensitive category of a CloudTrail call, or None for the ordinary."""
    action = event.action
    found = _CATEGORIES.get((action.service, action.name))
    if found is not None:
        return found
    if action.service == "ssm" and action.name in _PARAMETER_READS:
        return _DECRYPT if truthy(pick(_params(event), "withDecryption")) else None
    if action.service == "ec2" and action.name == "DescribeInstanceAttribute":
        return _USER_DATA if pick(_params(event), "attribute") == "userData" else None
    return None


# The kind and model novelties keep their members (prefixed) in the principal's action
# baseline, the hash behav.new-sensitive-action keeps of every API it calls: their learning
# period then counts from the principal's first action, not from its first sensitive one,
# and they add no state of their own.
_ACTION_BASELINE = "act"
_KIND = "kind:"


def _observe_category(event: Event, facts: Facts) -> Sequence[Observation]:
    # Runs for every event (the category of a parameter read depends on its parameters).
    if event.action.name not in _NAMES or facts.skip or facts.entity is None:
        return ()
    if event.source != "cloudtrail":
        return ()
    category = category_of(event)
    if category is None:
        return ()
    return (Observation(facts.entity, _KIND + category),)


def _from(event: Event) -> str:
    return f" from {event.source_ip}" if event.source_ip else ""


def _judge_category(event: Event, member: str, base: Baseline) -> Hit | None:
    member = member.removeprefix(_KIND)
    done = event.outcome.success
    refused = "" if done else f" (refused: {event.outcome.error_code})"
    return Hit(
        summary=f"{display_principal(event)} did something of a kind it had never done: "
        f"{member} ({action_label(event)}){_from(event)}{refused}",
        context=f"first {member} in {base.days(event.time)} days of history; "
        f"{base.size} actions and kinds known for it",
        severity=Severity.medium if member in _WEIGHTY and done else Severity.low,
    )


# --- first model invocation -----------------------------------------------------------------------

_INVOCATIONS = frozenset(
    ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream")
)


def _observe_invocation(event: Event, facts: Facts) -> Sequence[Observation]:
    if facts.skip or facts.entity is None or event.source != "cloudtrail":
        return ()
    if event.action.service != "bedrock" or event.action.name not in _INVOCATIONS:
        return ()
    return (Observation(facts.entity, _KIND + "model invocation"),)


def _long_term_key(event: Event) -> bool:
    principal = event.principal
    return principal.type == "iam_user" and (principal.access_key_id or "").startswith("AKIA")


def _judge_invocation(event: Event, member: str, base: Baseline) -> Hit | None:
    model = pick(_params(event), "modelId") or "a model"
    done = event.outcome.success
    what = "invoked" if done else "tried to invoke"
    refused = "" if done else f", refused with {event.outcome.error_code}"
    history = (
        f"first invocation in {base.days(event.time)} days of history"
        if base.trained
        else "the principal's baseline is still being learned"
    )
    return Hit(
        summary=f"{display_principal(event)} {what} {model} ({action_label(event)})"
        f"{_from(event)}{refused}, the first model invocation it made",
        context=history,
        severity=Severity.medium if _long_term_key(event) and done else Severity.low,
    )


# --- instance credentials off their instance ------------------------------------------------------


def _observe_off_instance(event: Event, facts: Facts) -> Sequence[Observation]:
    # One baseline per account of the public networks its instances reach AWS from (their
    # NAT gateways' or their own addresses): shared by every role, so a role or instance new
    # to the account is judged against the account's egress from its first call.
    if not facts.instance or facts.skip or event.source != "cloudtrail" or not event.account:
        return ()
    network = facts.network
    if network is None or network == "private" or facts.family.startswith("service:"):
        return ()
    return (Observation(f"egress:{event.account}", network),)


def _judge_off_instance(event: Event, member: str, base: Baseline) -> Hit | None:
    return Hit(
        summary=f"{display_principal(event)} (instance credentials of "
        f"{event.principal.session_name}) called {action_label(event)} from {event.source_ip} "
        f"({member}), a network no instance of account {event.account} had used",
        context=f"first time in {base.days(event.time)} days of the account's history; its "
        f"instances reach AWS from {base.size} known network(s): the credentials were copied "
        "off the instance and used elsewhere",
    )


# --- instance type families new to an account -----------------------------------------------------

# Calls that name the instance types an account will run: launches, fleets, spot requests and
# the launch templates that autoscaling groups and fleets launch from later.
_TYPE_CALLS = frozenset(
    (
        "RunInstances",
        "RequestSpotInstances",
        "RequestSpotFleet",
        "CreateFleet",
        "CreateLaunchTemplate",
        "CreateLaunchTemplateVersion",
    )
)


def _observe_family(event: Event, facts: Facts) -> Sequence[Observation]:
    # Runs for every event (the types are parameters); the name settles most of them.
    action = event.action
    if action.name not in _TYPE_CALLS or action.service != "ec2" or not event.account:
        return ()
    if event.source != "cloudtrail":
        return ()
    types = launched_types(_params(event), payload(event, "response_elements"))
    if not types:
        return ()
    account = f"account:{event.account}"
    families = dict.fromkeys(instance_family(t) for t in types)
    return tuple(Observation(account, family, account) for family in families)


def _judge_family(event: Event, member: str, base: Baseline) -> Hit | None:
    principal = event.principal
    if principal.type == "aws_service" or principal.invoked_by:
        # An autoscaling group or fleet launching from a template: the template's creation
        # was the change, and was judged. The family is learned all the same.
        return None
    attempt = attempt_of(event)
    if not event.outcome.success and attempt is None:
        return None  # throttled or AWS's own fault: says nothing of the caller
    types = launched_types(_params(event), payload(event, "response_elements"))
    shown = ", ".join(t for t in types if instance_family(t) == member)
    # The family decides (an accelerated family is one whatever its size).
    accelerated = unusual_type(member) == "GPU/accelerated"
    severity = Severity.medium if accelerated and attempt is None else Severity.low
    kind = "GPU/accelerated instance family" if accelerated else "instance family"
    summary = (
        f"{display_principal(event)} called {action_label(event)} for {shown or member}: "
        f"{kind} {member}, new to account {event.account}"
    )
    if attempt is not None:
        summary += f"; an attempt, {attempt} ({event.outcome.error_code})"
    return Hit(
        summary=summary,
        context=f"first time in {base.days(event.time)} days of the account's history; it had "
        f"used {base.size} other instance family(ies)",
        severity=severity,
    )


# --- bursts ---------------------------------------------------------------------------------------


def _user_data_read(event: Event) -> str | None:
    action = event.action
    if action.name != "DescribeInstanceAttribute" or action.service != "ec2":
        return None
    params = _params(event)
    if pick(params, "attribute") != "userData":
        return None
    return str(pick(params, "instanceId") or "?")[:64]


# High-risk: anything a CloudTrail rule or a sensitive category names.
_HIGH_RISK = frozenset(
    {name for rule in CLOUDTRAIL_RULES if rule.names for name in rule.names}
    | {name for _, name in _CATEGORIES}
    | _PARAMETER_READS
)
_TARGET_KEYS = (
    "instanceId",
    "secretId",
    "name",
    "bucketName",
    "userName",
    "roleName",
    "groupId",
    "snapshotId",
    "keyId",
    "functionName",
    "dBInstanceIdentifier",
    "target",
)


def _denied_high_risk(event: Event) -> str | None:
    if not event.outcome.error_code or event.source != "cloudtrail":
        return None  # most events: no error at all
    if event.action.name not in _HIGH_RISK or not error_is_denied(event):
        return None
    target = event.resources[0] if event.resources else pick(_params(event), *_TARGET_KEYS)
    if isinstance(target, list):
        target = target[0] if target else None
    unit = f"{event.action.service}:{event.action.name}"
    return f"{unit} {target}"[:120] if target else unit


MORE_NOVELTIES: tuple[Novelty, ...] = (
    Novelty(
        behaviour_spec(
            "behav.new-sensitive-category",
            title="First sensitive action of its kind for a principal",
            severity=Severity.low,
            tactics=["TA0006", "TA0005"],
            techniques=["T1555.006", "T1552.005", "T1098.001", "T1562.008"],
            description=(
                "A principal with a learned baseline did, for the first time, something of a "
                "sensitive kind: read a secret, decrypted parameters, read instance password "
                "data or user data, created credentials, changed logging or monitoring, got a "
                "shell on an instance, changed permissions. The kind counts, not the API name: "
                "stolen credentials do what their owner never did, even at low volume."
            ),
        ),
        _ACTION_BASELINE,
        _observe_category,
        _judge_category,
        max_members=1024,
        label="actions",
        reads="event",
    ),
    Novelty(
        behaviour_spec(
            "behav.first-model-invocation",
            title="First model invocation of a principal",
            severity=Severity.low,
            tactics=["TA0040"],
            techniques=["T1496"],
            description=(
                "A principal invoked a Bedrock model (InvokeModel, Converse…) for the first time"
                " in its history; a long-lived user key doing so is medium, and is judged even "
                "before its baseline is learned: stolen keys are sold for model access."
            ),
        ),
        _ACTION_BASELINE,
        _observe_invocation,
        _judge_invocation,
        max_members=1024,
        untrained=lambda event, member: _long_term_key(event),
        label="actions",
        reads="action",
    ),
    Novelty(
        behaviour_spec(
            "aws.instance-credentials-off-instance",
            title="Instance credentials used outside the account's networks",
            severity=Severity.high,
            tactics=["TA0006", "TA0001"],
            techniques=["T1552.005", "T1078.004"],
            description=(
                "An instance profile session (named after the instance id) was used from a "
                "public network that no instance of the account had used: the credentials were "
                "taken from the metadata service and used elsewhere. Accounts whose instances "
                "use many addresses (public IPs of their own) are left out."
            ),
        ),
        "offi",
        _observe_off_instance,
        _judge_off_instance,
        diverse_at=16,
        label="instance networks",
        reads="facts",
    ),
    Novelty(
        behaviour_spec(
            "behav.new-instance-family",
            title="Instance type family new to the account",
            severity=Severity.low,
            tactics=["TA0040"],
            techniques=["T1496", "T1578.002"],
            description=(
                "Instances of a type family the account had never used (p5, g6, inf2, trn1, "
                "m7i…) were launched, requested (spot, fleets) or put in a launch template, "
                "after the account's learning period: stolen accounts are used to run what their"
                " owners never do. Medium for GPU and other accelerated families, low for the "
                "others and for attempts (refused, dry runs, quotas)."
            ),
        ),
        "ifam",
        _observe_family,
        _judge_family,
        label="instance families",
        reads="event",
    ),
)

MORE_BURSTS: tuple[Burst, ...] = (
    Burst(
        behaviour_spec(
            "aws.userdata-read-burst",
            title="User data read across many instances",
            severity=Severity.high,
            tactics=["TA0006", "TA0007"],
            techniques=["T1552.005"],
            description=(
                "The user data of many different instances was read in a short time: hunting "
                "for the passwords and keys startup scripts carry."
            ),
            dedup_window=timedelta(hours=1),
        ),
        "udata",
        _user_data_read,
        "instances' user data read",
        minimum=5,
        factor=2.0,
        variety=True,
    ),
    Burst(
        behaviour_spec(
            "behav.high-risk-denied-burst",
            title="High-risk calls refused across many resources",
            severity=Severity.medium,
            tactics=["TA0007", "TA0006"],
            techniques=["T1580", "T1552", "T1078.004"],
            description=(
                "One principal was refused high-risk calls (the ones rules watch: secrets, "
                "password data, policies, logging, commands…) on many different resources in a "
                "short time: credentials being tried for what they can reach."
            ),
            dedup_window=timedelta(hours=1),
        ),
        "hrdeny",
        _denied_high_risk,
        "high-risk calls refused",
        minimum=4,
        factor=2.0,
        variety=True,
    ),
)
