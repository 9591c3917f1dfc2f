"""Small, cached facts about events that many detectors share.

Everything here is a pure function; the costly ones (IP parsing, user-agent families) are
memoised because the same few values repeat across millions of events.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import orjson

from harvester.events import Event, Principal

__all__ = [
    "PUBLIC_INFO_PATHS",
    "STRONG_ATTEMPTS",
    "action_label",
    "attempt_of",
    "behaviour_entity",
    "desktop_os",
    "display_principal",
    "error_is_denied",
    "is_control_plane_user",
    "is_human",
    "is_instance_session",
    "is_public_ip",
    "is_system_k8s",
    "load_json",
    "network_of",
    "offensive_tool",
    "ua_family",
]

# --- networks ---------------------------------------------------------------------------------


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def network_of(ip: str | None) -> str | None:
    """The /24 (IPv4) or /64 (IPv6) of a public address; ``private`` for internal ones.

    None for what is not an address: AWS service names ("ec2.amazonaws.com"), "AWS Internal".
    """
    if not ip:
        return None
    # Addresses inside a VPC are many and rarely repeat: answer them without parsing, so
    # they do not push the public ones out of the cache.
    if ip.startswith(("10.", "192.168.")) and ip[-1:].isdigit():
        return "private"
    prefix, dot, last = ip.rpartition(".")
    if dot and last.isdigit() and len(last) <= 3 and int(last) <= 255 and ":" not in prefix:
        # Whether an IPv4 address is public is decided by its /24 (the special ranges are
        # /24 or wider, but for a few single-host ones inside reserved /24s anyway), so one
        # cache entry serves the whole network.
        return _network_of(prefix + ".1")
    return _network_of(ip)


@functools.lru_cache(maxsize=65536)
def _network_of(ip: str) -> str | None:
    address = _address(ip)
    if address is None:
        return None
    if not address.is_global:
        return "private"
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def is_public_ip(ip: str | None) -> bool:
    network = network_of(ip)
    return network is not None and network != "private"


# --- user agents ------------------------------------------------------------------------------

# The leading product token names the tool; later tokens may name what it was asked to do
# ("aws-cli/2 … command/cloudformation.describe-stacks") and must not count.
_UA_PRODUCTS = {
    "aws-cli": "aws-cli",
    "boto3": "boto3",
    "botocore": "boto3",
    "aws-sdk-go-v2": "aws-sdk-go-v2",
    "aws-sdk-go": "aws-sdk-go",
    "aws-sdk-java": "aws-sdk-java",
    "aws-sdk-js": "aws-sdk-js",
    "aws-sdk-nodejs": "aws-sdk-js",
    "aws-sdk-dotnet": "aws-sdk-dotnet",
    "aws-sdk-ruby": "aws-sdk-ruby",
    "aws-sdk-rust": "aws-sdk-rust",
    "kubectl": "kubectl",
    "helm": "helm",
    "python-requests": "python-requests",
    "curl": "curl",
    "terraform": "terraform",
    "pulumi": "pulumi",
}
# Infrastructure tools that wrap an SDK and announce themselves further in (APN/1.0 HashiCorp…).
_UA_WRAPPERS = (
    ("terraform", "terraform"),
    ("pulumi", "pulumi"),
    ("cloudformation", "cloudformation"),
)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


@functools.lru_cache(maxsize=16384)
def ua_family(agent: str | None) -> str:
    """A stable, coarse name for the tool behind a user agent: ``aws-cli``, ``console``…

    Versions are dropped on purpose: an upgrade of the CLI is not a new tool.
    """
    if not agent:
        return "none"
    text = agent.strip().strip("[]").strip()
    lowered = text.lower()
    if lowered in ("aws internal", "aws-internal") or lowered.startswith("aws-internal/"):
        return "aws-internal"
    if lowered.endswith(".amazonaws.com"):
        name = lowered.removesuffix(".amazonaws.com")
        return "console" if name.startswith(("console", "signin")) else f"service:{name}"
    if lowered.startswith("mozilla/"):
        return "browser"
    match = _TOKEN.match(text)
    token = match.group(0).lower() if match else ""
    if token in _UA_PRODUCTS:
        return _UA_PRODUCTS[token]
    for needle, family in _UA_WRAPPERS:
        if needle in lowered:
            return family
    return token[:40] or "other"


_DESKTOP = (
    (re.compile(r"darwin|macintosh|mac os x|os/macos|md/os#macos", re.I), "macOS"),
    (re.compile(r"windows|win32|win64|os/windows|md/os#windows", re.I), "Windows"),
)


@functools.lru_cache(maxsize=16384)
def desktop_os(agent: str | None) -> str | None:
    """The desktop operating system a user agent names, if any (servers run neither)."""
    if not agent:
        return None
    for pattern, name in _DESKTOP:
        if pattern.search(agent):
            return name
    return None


# Offensive distributions and cloud attack or audit tools that announce themselves in the
# user agent. Matched as words, so "kali" does not match inside another word.
_OFFENSIVE = re.compile(
    r"(?<![a-z0-9])("
    r"kali|parrot|pentoo|blackarch|pacu|cloudsploit|scoutsuite|scout ?suite|prowler|"
    r"trufflehog|cloudfox|stratus-red-team|aws_consoler|weirdaal|nimbostratus|"
    r"cloudgoat|cloud_enum|s3scanner|endgame|cred_scanner|enumerate-iam|hacktricks"
    r")(?![a-z])",
    re.I,
)


@functools.lru_cache(maxsize=16384)
def offensive_tool(agent: str | None) -> str | None:
    if not agent:
        return None
    match = _OFFENSIVE.search(agent)
    return match.group(1).lower() if match else None


# --- principals -------------------------------------------------------------------------------

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$", re.I)
_SSO_ROLE = "AWSReservedSSO_"


def is_instance_session(principal: Principal) -> bool:
    """An EC2 instance profile's credentials: the session is named after the instance id."""
    session = principal.session_name
    return (
        principal.type == "assumed_role"
        and session is not None
        and session.startswith("i-")  # most sessions are not: no regex for them
        and _INSTANCE_ID.match(session) is not None
    )


# IAM Identity Center creates its roles under this path (then the Region for some), whatever
# the permission set's role is called.
_SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
# EKS maps an IAM session to a Kubernetes user name with {{SessionName}}, which turns the "@"
# of an e-mail into "-": pat@example.com arrives as pat-example.com. What is left is an
# e-mail with a "-" for its "@": a name, a "-", a dotted domain.
_MAPPED_EMAIL = re.compile(r"^[^@\s/:]+-[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}$", re.I)
# Host names look the same (ip-10-0-1-20.ec2.internal): they are nodes, not people.
_HOST_DOMAINS = (".internal", ".local", ".localdomain")


def _mapped_email(name: str) -> bool:
    return _MAPPED_EMAIL.match(name) is not None and not name.lower().endswith(_HOST_DOMAINS)


def is_human(principal: Principal) -> bool:
    """A person rather than a workload: SSO/SAML sessions, e-mail-named sessions, root."""
    if principal.type in ("root", "saml_user", "identity_center_user"):
        return True
    session = principal.session_name or ""
    if "@" in session:
        return True
    role = principal.iam_arn or ""
    if f"/{_SSO_ROLE}" in role or _SSO_PATH in role:
        return True
    if _SSO_PATH in (principal.session_issuer_arn or ""):
        return True
    if principal.type == "k8s_user":
        name = principal.k8s_username or ""
        if "@" in name:
            return True
        if is_control_plane_user(name) or not (principal.arn or principal.principal_id):
            return False  # not signed in with IAM: no session name was mapped
        # The session name, from the user name's ARN or the user name itself.
        return _mapped_email(session or name)
    return False


def display_principal(event: Event) -> str | None:
    p = event.principal
    if p.type == "root" and event.account:
        return p.arn or f"arn:aws:iam::{event.account}:root"
    return p.arn or p.k8s_username or p.name or p.principal_id


def is_control_plane_user(username: str | None) -> bool:
    """Kubernetes' own components and EKS' managed actors, not people or workloads."""
    if not username:
        return False
    if username.startswith("eks:"):
        return True
    return (
        username.startswith("system:")
        and not username.startswith("system:serviceaccount:")
        and username not in ("system:anonymous", "system:unauthenticated")
    )


def is_system_k8s(principal: Principal) -> bool:
    """Control plane components and kube-system service accounts."""
    name = principal.k8s_username or principal.name
    if is_control_plane_user(name):
        return True
    return bool(name and name.startswith("system:serviceaccount:kube-system:"))


def behaviour_entity(event: Event) -> str | None:
    """Whose habits an event belongs to; None for AWS services acting on their own.

    A role's sessions are one entity (instances, CI runs come and go) except when a session
    is a person (SSO, e-mail-named): people sharing a permission set have different habits.
    The same value comes out of CloudTrail and EKS, so one identity is followed across both.
    """
    p = event.principal
    kind = p.type
    if kind == "aws_service":
        return None
    if kind == "root":
        return p.arn or (f"arn:aws:iam::{event.account}:root" if event.account else "root")
    if kind == "anonymous":
        return "system:anonymous"
    if kind == "k8s_user" and not p.iam_arn and p.name and p.name.startswith("system:node:"):
        return "system:node:*"
    if p.iam_arn:
        if p.session_name and is_human(p):
            return f"{p.iam_arn}/{p.session_name}"
        return p.iam_arn
    return p.arn or p.k8s_username or p.name or p.principal_id


def action_label(event: Event) -> str:
    a = event.action
    if event.source == "eks":
        resource = a.resource or a.request_uri or "?"
        if a.subresource:
            resource = f"{resource}/{a.subresource}"
        return f"{a.verb or a.name} {resource}"
    return f"{a.service}:{a.name}"


_DENIED_CODES = frozenset(
    (
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "Client.UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "NotAuthorized",
        "Forbidden",
        "VpceAccessDenied",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    )
)


def error_is_denied(event: Event) -> bool:
    """The request was refused for lack of permission (the mark of enumeration)."""
    outcome = event.outcome
    if event.source == "eks":
        return outcome.status_code in (401, 403) or outcome.decision == "forbid"
    code = outcome.error_code
    if not code:
        return False
    return code in _DENIED_CODES or "AccessDenied" in code or "Unauthorized" in code


# A failed call is still an attempt at what it asked: refused, checked with a dry run, aimed at
# something that is not there (guessing names), stopped by a quota (a launch too big for the
# account), or rejected for its content. Only AWS's answers to load and its own faults say
# nothing of the caller's intent (EC2's RequestLimitExceeded is throttling, not a quota).
_NO_INTENT_MARKS = (
    "Throttl",
    "RequestLimitExceeded",
    "TooManyRequests",
    "SlowDown",
    "Internal",
    "ServiceUnavailable",
    "ServiceFailure",
    "Unavailable",
)
_QUOTA_MARKS = ("LimitExceeded", "QuotaExceeded", "InsufficientInstanceCapacity")
_NOT_FOUND_MARKS = ("NotFound", "NoSuch")
_REFUSED = "refused"
_DRY_RUN = "a dry run that would have succeeded"
_QUOTA = "stopped by a quota"
# Attempts that show the caller could not, or checked it could: a refusal, a dry run, a quota.
# A missing target or a rejected request shows less (a typo, a stale name, a wrong value).
STRONG_ATTEMPTS = frozenset((_REFUSED, _DRY_RUN, _QUOTA))


@functools.lru_cache(maxsize=1024)
def _attempt_kind(code: str) -> str | None:
    if any(mark in code for mark in _NO_INTENT_MARKS):
        return None
    if code.endswith("DryRunOperation"):
        return _DRY_RUN
    if code in _DENIED_CODES or "AccessDenied" in code or "Unauthorized" in code:
        return _REFUSED
    if any(mark in code for mark in _NOT_FOUND_MARKS):
        return "aimed at something that does not exist"
    if any(mark in code for mark in _QUOTA_MARKS):
        return _QUOTA
    return "rejected"


def attempt_of(event: Event) -> str | None:
    """How a failed CloudTrail call was still an attempt at what it asked, in words; else None."""
    code = event.outcome.error_code
    if event.outcome.success or not code or event.source != "cloudtrail":
        return None
    return _attempt_kind(code)


PUBLIC_INFO_PATHS = ("/version", "/healthz", "/livez", "/readyz", "/.well-known/", "/openid/")


# --- JSON payloads and policy documents ---------------------------------------------------------


def load_json(value: Any) -> Any:
    """A policy or document as CloudTrail records it: a dict, JSON text or URL-encoded JSON."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("%7B", "%7b")):
            text = unquote(text)
        if not text.startswith(("{", "[")):
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def statements(document: Any) -> Iterator[dict[str, Any]]:
    doc = load_json(document)
    if not isinstance(doc, dict):
        return
    for statement in as_list(doc.get("Statement")):
        if isinstance(statement, dict):
            yield statement


# Conditions that tie a grant to our network, organization or a specific caller, so that a
# wildcard principal is not the whole internet. sts:ExternalId is not one: anyone who learns
# the id may use it.
_RESTRICTIVE_KEYS = frozenset(
    (
        "aws:sourceip",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:userid",
        "aws:username",
        "aws:resourceaccount",
        "kms:calleraccount",
        "kms:viaservice",
        "lambda:functionurlauthtype",
    )
)


def restricted(statement: dict[str, Any]) -> bool:
    conditions = statement.get("Condition")
    if not isinstance(conditions, dict):
        return False
    for block in conditions.values():
        if isinstance(block, dict) and any(str(key).lower() in _RESTRICTIVE_KEYS for key in block):
            return True
    return False


def aws_principals(statement: dict[str, Any]) -> list[str]:
    """The AWS principals a statement names (``*`` for anyone); services are left out."""
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, dict):
        return []
    out: list[str] = []
    for kind in ("AWS", "CanonicalUser"):
        out.extend(str(v) for v in as_list(principal.get(kind)))
    return out


_ACCOUNT = re.compile(r"^([0-9]{12})$|^arn:aws[a-z-]*:(?:iam|sts)::([0-9]{12}):")


def principal_account(value: str) -> str | None:
    match = _ACCOUNT.match(value.strip())
    if match is None:
        return None
    return match.group(1) or match.group(2)


def grants_outside(
    document: Any, *, own: str | None, known: frozenset[str]
) -> tuple[bool, set[str]]:
    """Whether an Allow in ``document`` reaches anyone (public), and which foreign accounts."""
    public = False
    foreign: set[str] = set()
    for statement in statements(document):
        if str(statement.get("Effect", "")).lower() != "allow" or restricted(statement):
            continue
        for value in aws_principals(statement):
            if value == "*":
                public = True
                continue
            account = principal_account(value)
            if account and account != own and account not in known:
                foreign.add(account)
    return public, foreign


def allows_everything(document: Any) -> bool:
    """An Allow of every action on every resource: administrator rights."""
    for statement in statements(document):
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        actions = [str(a) for a in as_list(statement.get("Action"))]
        resources = [str(r) for r in as_list(statement.get("Resource"))]
        if any(a in ("*", "*:*") for a in actions) and "*" in resources:
            return True
    return False
