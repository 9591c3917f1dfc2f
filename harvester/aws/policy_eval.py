"""Static evaluation of S3 bucket policies and IAM identity policies for the harvesting principal.

``harvester doctor`` uses this to explain an ``AccessDenied`` before (or after) it happens: which
statement denies, which statement would grant, and what to change. Everything here is a pure
function over policy documents; nothing calls AWS.

The evaluation is three-valued. A statement *applies*, *may apply* or *does not apply* to the
request. "May" is for what cannot be known statically: the network path (``aws:SourceVpce``,
``aws:SourceIp``), principal tags, an organization id nobody told us, a policy variable, a
``CanonicalUser`` principal, the harvester's role session name. Keys that are known for the
harvester (it always uses TLS, it signs with SigV4, it is not an AWS service) are evaluated.

Only IAM's own semantics are modelled; S3 ACLs, Block Public Access, SCPs, RCPs, permissions
boundaries, session policies and KMS key policies are out of scope and the caller says so.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum, StrEnum
from typing import Final

__all__ = [
    "AccessRequest",
    "Condition",
    "ContextInput",
    "Effect",
    "Evaluation",
    "Finding",
    "InvalidArnError",
    "Outcome",
    "Policy",
    "PolicyInput",
    "PolicyKind",
    "PolicyParseError",
    "PrincipalContext",
    "PrincipalKind",
    "Statement",
    "Verdict",
    "evaluate_bucket_policy",
    "evaluate_identity_policies",
    "evaluate_identity_policy",
    "harvest_requests",
    "parse_policy",
]

PolicyInput = Mapping[str, object] | str | bytes
"""A policy as AWS returns it: a JSON string (``GetBucketPolicy``) or an already decoded dict."""

ContextInput = Mapping[str, str | Sequence[str] | None]
"""Extra request-context values the caller knows, e.g. ``{"s3:prefix": "AWSLogs/"}``.

``None`` means "known to be absent from the request".
"""

_ACCOUNT_RE: Final = re.compile(r"^[0-9]{12}$")
_LIST_ACTIONS: Final = frozenset(
    {"s3:listbucket", "s3:listbucketversions", "s3:listbucketmultipartuploads"}
)


class PolicyParseError(ValueError):
    """Not a policy IAM would accept, or not of the kind (bucket / identity) we were asked about."""

    def __init__(self, message: str, *, statement: str | None = None) -> None:
        self.statement = statement
        super().__init__(f"{statement}: {message}" if statement else message)


class InvalidArnError(ValueError):
    """A principal or resource ARN the evaluator cannot use."""


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class PolicyKind(StrEnum):
    BUCKET = "bucket"
    IDENTITY = "identity"


class PrincipalKind(StrEnum):
    ASSUMED_ROLE = "assumed_role"
    USER = "user"


class Outcome(StrEnum):
    APPLIES = "applies"
    MAY_APPLY = "may_apply"
    DOES_NOT_APPLY = "does_not_apply"


class Verdict(StrEnum):
    DENIED = "denied"
    """An explicit Deny applies."""
    MAY_BE_DENIED = "may_be_denied"
    """No Deny certainly applies, but one with an undecidable condition might."""
    ALLOWED = "allowed"
    """An Allow applies and no Deny can."""
    MAY_BE_ALLOWED = "may_be_allowed"
    """No Deny can apply, and the only Allows depend on something we cannot see."""
    NOT_GRANTED = "not_granted"
    """Nothing in the document(s) grants the request."""


# --- principal ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrincipalContext:
    """Who the harvester is when it calls S3.

    A role never calls AWS itself: its *sessions* do, as
    ``arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>``. The session name is
    chosen by the harvester (``RoleSessionName``); without it, checks that need the exact session
    ARN come out as "may".
    """

    partition: str
    account_id: str
    kind: PrincipalKind
    principal_arn: str
    """``aws:PrincipalArn``: the role ARN (with path) for a session, else the user ARN."""
    name: str
    """The role name or user name; unique within the account regardless of path."""
    session_name: str | None = None
    org_id: str | None = None
    role_path_known: bool = True
    """False when built from a session ARN only, which does not carry the role's path."""

    @property
    def session_arn(self) -> str | None:
        if self.kind is not PrincipalKind.ASSUMED_ROLE or self.session_name is None:
            return None
        return (
            f"arn:{self.partition}:sts::{self.account_id}:assumed-role/"
            f"{self.name}/{self.session_name}"
        )

    @property
    def account_root_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"

    @property
    def caller_arn(self) -> str:
        """The ARN AWS shows as the caller, with a placeholder when the session name is unknown."""
        if self.kind is PrincipalKind.USER:
            return self.principal_arn
        session = self.session_name or "<session name>"
        return f"arn:{self.partition}:sts::{self.account_id}:assumed-role/{self.name}/{session}"

    @classmethod
    def from_arn(
        cls,
        arn: str,
        *,
        session_name: str | None = None,
        role_arn: str | None = None,
        org_id: str | None = None,
    ) -> PrincipalContext:
        """Build the context from a role, assumed-role session or user ARN.

        ``role_arn`` completes a session ARN with the role's path (for ``aws:PrincipalArn``).
        """
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[1]:
            raise InvalidArnError(f"not an ARN: {arn!r}")
        _, partition, service, _, account, resource = parts
        if not _ACCOUNT_RE.match(account):
            raise InvalidArnError(f"no 12-digit account id in {arn!r}")
        if service == "iam" and resource.startswith("role/"):
            name = resource.rsplit("/", 1)[1]
            if not name:
                raise InvalidArnError(f"no role name in {arn!r}")
            return cls(
                partition=partition,
                account_id=account,
                kind=PrincipalKind.ASSUMED_ROLE,
                principal_arn=arn,
                name=name,
                session_name=session_name,
                org_id=org_id,
            )
        if service == "sts" and resource.startswith("assumed-role/"):
            pieces = resource.split("/")
            if len(pieces) != 3 or not pieces[1] or not pieces[2]:
                raise InvalidArnError(f"expected assumed-role/<role>/<session> in {arn!r}")
            name, session = pieces[1], pieces[2]
            if session_name is not None and session_name != session:
                raise InvalidArnError(f"session name {session_name!r} contradicts {arn!r}")
            if role_arn is not None:
                role = cls.from_arn(role_arn)
                if (role.account_id, role.name, role.partition) != (account, name, partition):
                    raise InvalidArnError(f"role {role_arn!r} is not the role of session {arn!r}")
                path_known, principal_arn = True, role_arn
            else:
                # Most roles live at path "/", so this guess is usually right; findings that relied
                # on it say so.
                path_known, principal_arn = False, f"arn:{partition}:iam::{account}:role/{name}"
            return cls(
                partition=partition,
                account_id=account,
                kind=PrincipalKind.ASSUMED_ROLE,
                principal_arn=principal_arn,
                name=name,
                session_name=session,
                org_id=org_id,
                role_path_known=path_known,
            )
        if service == "iam" and resource.startswith("user/"):
            name = resource.rsplit("/", 1)[1]
            if not name:
                raise InvalidArnError(f"no user name in {arn!r}")
            return cls(
                partition=partition,
                account_id=account,
                kind=PrincipalKind.USER,
                principal_arn=arn,
                name=name,
                org_id=org_id,
            )
        raise InvalidArnError(
            f"{arn!r} is not an IAM role, assumed-role session or IAM user ARN; the harvester "
            "always calls S3 as one of those"
        )


# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One call the harvester makes: an action on a resource, with what we know of its context."""

    action: str
    resource: str
    context: tuple[tuple[str, str | None], ...] = ()
    """Known request-context values (key, value); a value of None means the key is absent."""

    def context_mapping(self) -> dict[str, str | None]:
        return dict(self.context)


def harvest_requests(
    *, bucket: str, prefix: str = "", key: str | None = None, partition: str = "aws"
) -> tuple[AccessRequest, AccessRequest]:
    """The two calls harvesting needs: ``s3:GetObject`` on the log objects and ``s3:ListBucket``.

    Without ``key`` the GetObject resource ends in ``*``, meaning "every key under ``prefix``":
    a statement covering only some of those keys then comes out as "may apply".
    """
    object_arn = f"arn:{partition}:s3:::{bucket}/{key if key is not None else prefix + '*'}"
    list_context: tuple[tuple[str, str | None], ...] = (("s3:prefix", prefix),) if prefix else ()
    return (
        AccessRequest(action="s3:GetObject", resource=object_arn),
        AccessRequest(
            action="s3:ListBucket", resource=f"arn:{partition}:s3:::{bucket}", context=list_context
        ),
    )


# --- parsed policy -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]

    def describe(self) -> str:
        shown = self.values[0] if len(self.values) == 1 else "[" + ", ".join(self.values) + "]"
        return f"{self.operator} {self.key} {shown}"


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    negate_actions: bool
    resources: tuple[str, ...]
    negate_resources: bool
    principals: tuple[tuple[str, tuple[str, ...]], ...] | None
    """(type, values) pairs such as ("AWS", ("arn:aws:iam::111111111111:root",)); None if absent."""
    negate_principals: bool
    conditions: tuple[Condition, ...]
    policy_name: str | None = None

    @property
    def label(self) -> str:
        """The Sid, or the statement's JSON position when it has none."""
        return self.sid if self.sid else f"Statement[{self.index}]"

    def describe(self) -> str:
        where = f" of policy '{self.policy_name}'" if self.policy_name else ""
        return (f"statement '{self.sid}'" if self.sid else f"Statement[{self.index}]") + where


@dataclass(frozen=True, slots=True)
class Policy:
    version: str | None
    statements: tuple[Statement, ...]
    name: str | None = None

    @property
    def supports_variables(self) -> bool:
        # Policy variables only exist from version 2012-10-17; before it "${...}" is literal text.
        return self.version == "2012-10-17"


def parse_policy(document: PolicyInput, *, kind: PolicyKind, name: str | None = None) -> Policy:
    """Validate and normalise a policy document, or raise :class:`PolicyParseError`."""
    where = f"policy '{name}'" if name else "policy"
    if isinstance(document, str | bytes):
        try:
            raw: object = json.loads(document)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PolicyParseError(f"{where} is not valid JSON: {exc}") from exc
    else:
        raw = document
    if not isinstance(raw, Mapping):
        raise PolicyParseError(f"{where} must be a JSON object, got {type(raw).__name__}")
    version = raw.get("Version")
    if version is not None and not isinstance(version, str):
        raise PolicyParseError(f"{where}: Version must be a string")
    if "Statement" not in raw:
        raise PolicyParseError(f"{where} has no Statement element")
    body = raw["Statement"]
    # IAM accepts a single statement object as well as a list of them.
    if isinstance(body, Mapping):
        items: list[object] = [body]
    elif isinstance(body, list):
        items = list(body)
    else:
        raise PolicyParseError(
            f"{where}: Statement must be an object or a list of objects, got {_json_type(body)}"
        )
    statements = tuple(
        _parse_statement(item, index, kind, name) for index, item in enumerate(items)
    )
    return Policy(version=version, statements=statements, name=name)


def _parse_statement(
    item: object, index: int, kind: PolicyKind, policy_name: str | None
) -> Statement:
    label = f"Statement[{index}]" + (f" of policy '{policy_name}'" if policy_name else "")
    if not isinstance(item, Mapping):
        raise PolicyParseError(f"must be an object, got {type(item).__name__}", statement=label)
    sid = item.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyParseError("Sid must be a string", statement=label)
    if sid:
        label = f"statement '{sid}'" + (f" of policy '{policy_name}'" if policy_name else "")

    if "Effect" not in item:
        raise PolicyParseError('missing Effect (must be "Allow" or "Deny")', statement=label)
    raw_effect = item["Effect"]
    # IAM compares Effect case-sensitively and rejects "allow"; so do we, rather than guess.
    if raw_effect not in ("Allow", "Deny"):
        raise PolicyParseError(
            f'Effect must be exactly "Allow" or "Deny" (case-sensitive), got {raw_effect!r}',
            statement=label,
        )
    effect = Effect(raw_effect)

    actions, negate_actions = _pick_one_of(item, "Action", "NotAction", label, required=True)
    for action in actions:
        if action != "*" and ":" not in action:
            raise PolicyParseError(
                f"action {action!r} must look like 'service:Action' (or be '*')", statement=label
            )
    resources, negate_resources = _pick_one_of(
        item, "Resource", "NotResource", label, required=True
    )

    has_principal = "Principal" in item or "NotPrincipal" in item
    if kind is PolicyKind.IDENTITY and has_principal:
        raise PolicyParseError(
            "identity policies cannot have Principal or NotPrincipal; is this a bucket policy?",
            statement=label,
        )
    if kind is PolicyKind.BUCKET and not has_principal:
        raise PolicyParseError(
            "bucket policy statements need Principal or NotPrincipal; is this an identity policy?",
            statement=label,
        )
    principals: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    negate_principals = False
    if has_principal:
        if "Principal" in item and "NotPrincipal" in item:
            raise PolicyParseError("has both Principal and NotPrincipal", statement=label)
        negate_principals = "NotPrincipal" in item
        element = "NotPrincipal" if negate_principals else "Principal"
        principals = _parse_principal(item[element], element, label)

    conditions = _parse_conditions(item.get("Condition"), label)
    return Statement(
        index=index,
        sid=sid or None,
        effect=effect,
        actions=actions,
        negate_actions=negate_actions,
        resources=resources,
        negate_resources=negate_resources,
        principals=principals,
        negate_principals=negate_principals,
        conditions=conditions,
        policy_name=policy_name,
    )


def _pick_one_of(
    item: Mapping[str, object], positive: str, negative: str, label: str, *, required: bool
) -> tuple[tuple[str, ...], bool]:
    if positive in item and negative in item:
        raise PolicyParseError(f"has both {positive} and {negative}", statement=label)
    if positive not in item and negative not in item:
        if required:
            raise PolicyParseError(f"needs {positive} or {negative}", statement=label)
        return (), False
    element = negative if negative in item else positive
    return _string_list(item[element], element, label), element == negative


def _string_list(value: object, element: str, label: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    if isinstance(value, list) and not value:
        raise PolicyParseError(f"{element} is an empty list", statement=label)
    if isinstance(value, list):
        bad = next(i for i, v in enumerate(value) if not isinstance(v, str))
        raise PolicyParseError(
            f"{element} must be a string or a list of strings, but item {bad} is "
            f"{_json_type(value[bad])}",
            statement=label,
        )
    raise PolicyParseError(
        f"{element} must be a string or a list of strings, got {_json_type(value)}", statement=label
    )


def _parse_principal(
    value: object, element: str, label: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value == "*":
        return (("AWS", ("*",)),)
    if not isinstance(value, Mapping) or not value:
        raise PolicyParseError(
            f'{element} must be "*" or an object like {{"AWS": [...]}}, got {_json_type(value)}',
            statement=label,
        )
    out: list[tuple[str, tuple[str, ...]]] = []
    for ptype, pvalues in value.items():
        if ptype not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise PolicyParseError(f"unknown {element} type {ptype!r}", statement=label)
        values = _string_list(pvalues, f"{element}.{ptype}", label)
        if ptype == "AWS":
            for v in values:
                if v != "*" and ("*" in v or "?" in v):
                    raise PolicyParseError(
                        f'{element} {v!r} contains a wildcard; IAM only accepts "*" on its own '
                        "(match patterns with a Condition on aws:PrincipalArn and ArnLike instead)",
                        statement=label,
                    )
        out.append((str(ptype), values))
    return tuple(out)


def _parse_conditions(value: object, label: str) -> tuple[Condition, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyParseError(
            f"Condition must be an object, got {_json_type(value)}", statement=label
        )
    out: list[Condition] = []
    for operator, block in value.items():
        if not isinstance(block, Mapping):
            raise PolicyParseError(
                f"Condition operator {operator!r} must map keys to values, got {_json_type(block)}",
                statement=label,
            )
        for key, raw in block.items():
            raw_values = raw if isinstance(raw, list) else [raw]
            values: list[str] = []
            for v in raw_values:
                if isinstance(v, bool):
                    values.append("true" if v else "false")
                elif isinstance(v, str | int | float):
                    values.append(str(v))
                else:
                    raise PolicyParseError(
                        f"Condition {operator} {key} values must be strings, numbers or booleans, "
                        f"got {_json_type(v)}",
                        statement=label,
                    )
            out.append(Condition(operator=str(operator), key=str(key), values=tuple(values)))
    return tuple(out)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    if value is None:
        return "null"
    return names.get(type(value), f"a {type(value).__name__}")


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """How one statement relates to the request, and what to do about it."""

    statement: str
    """The Sid, or ``Statement[i]`` (0-based) when the statement has none."""
    sid: str | None
    index: int
    policy: str | None
    effect: Effect
    outcome: Outcome
    reasons: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    """Condition keys (or other unknowns) a "may apply" outcome hinges on."""
    remedy: str | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the document(s) do to one request, statement by statement, with a verdict.

    Every statement lands in exactly one of the five finding tuples.
    """

    kind: PolicyKind
    principal: str
    action: str
    resource: str
    verdict: Verdict
    explanation: str
    remedy: str | None
    denies: tuple[Finding, ...]
    conditional_denies: tuple[Finding, ...]
    allows: tuple[Finding, ...]
    conditional_allows: tuple[Finding, ...]
    not_applying: tuple[Finding, ...]
    cross_account: bool = False


# --- three-valued logic ------------------------------------------------------------------------


class _Tri(Enum):
    NO = 0
    MAYBE = 1
    YES = 2


def _any(values: Iterable[_Tri]) -> _Tri:
    return max(values, key=lambda t: t.value, default=_Tri.NO)


def _all(values: Iterable[_Tri]) -> _Tri:
    return min(values, key=lambda t: t.value, default=_Tri.YES)


def _not(value: _Tri) -> _Tri:
    return {_Tri.NO: _Tri.YES, _Tri.YES: _Tri.NO, _Tri.MAYBE: _Tri.MAYBE}[value]


@dataclass(frozen=True, slots=True)
class _Check:
    element: str
    result: _Tri
    reason: str
    depends_on: tuple[str, ...] = ()
    fix: str | None = None
    """What removes this element's contribution to a Deny (or supplies it for a "may" Allow)."""


# --- request context ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Unknown:
    hint: str


_CtxValue = tuple[str, ...] | _Unknown | None

_UNKNOWN_HINTS: Final[Mapping[str, str]] = {
    "aws:sourcevpce": "which VPC endpoint, if any, the harvester's S3 traffic goes through",
    "aws:sourcevpc": "which VPC the harvester's S3 traffic comes from",
    "aws:sourceip": "the public IP address the harvester's requests come from",
    "aws:vpcsourceip": "the private IP address the harvester's requests come from",
    "aws:userid": "the role's unique id (AROA...)",
    "aws:requestedregion": "the region the harvester's S3 client uses",
    "aws:currenttime": "the time of the request",
    "aws:epochtime": "the time of the request",
    "aws:principalorgpaths": "the organization path of the harvester's account",
    "aws:multifactorauthpresent": "how the role session was obtained",
    "aws:calledvia": "the chain of services making the request",
    "aws:tokenissuetime": "when the role session was created",
    "s3:prefix": "the prefix the harvester lists",
    "s3:delimiter": "the delimiter the harvester lists with",
    "s3:max-keys": "the page size the harvester lists with",
    "s3:tlsversion": "the TLS version negotiated",
}

_KNOWN_NOTES: Final[Mapping[str, str]] = {
    "aws:securetransport": "the harvester always uses TLS",
    "s3:signatureversion": "boto3 signs S3 requests with SigV4",
    "s3:authtype": "boto3 sends credentials in the Authorization header",
    "aws:principalisawsservice": "the harvester is not an AWS service",
    "aws:viaawsservice": "the harvester calls S3 directly",
}

# Keys that only exist when an AWS service acts on someone's behalf.
_ABSENT_FOR_DIRECT_CALLS: Final = frozenset(
    {
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:principalservicename",
        "aws:principalservicenameslist",
    }
)


@dataclass(frozen=True, slots=True)
class _Env:
    principal: PrincipalContext
    action: str
    resource: str
    bucket_owner: str | None
    overrides: Mapping[str, tuple[str, ...] | None]
    variables: bool


def _lookup(key: str, env: _Env) -> _CtxValue:
    k = key.lower()
    if k in env.overrides:
        return env.overrides[k]
    p = env.principal
    if k == "aws:principalaccount":
        return (p.account_id,)
    if k == "aws:principalarn":
        return (p.principal_arn,)
    if k == "aws:principalorgid":
        if p.org_id is None:
            return _Unknown(f"the AWS Organizations id of account {p.account_id} (not given)")
        return (p.org_id,)
    if k == "aws:principaltype":
        return ("AssumedRole",) if p.kind is PrincipalKind.ASSUMED_ROLE else ("User",)
    if k == "aws:username":
        return (p.name,) if p.kind is PrincipalKind.USER else None
    if k == "aws:securetransport":
        return ("true",)
    if k in ("aws:principalisawsservice", "aws:viaawsservice"):
        return ("false",)
    if k == "s3:signatureversion":
        return ("AWS4-HMAC-SHA256",)
    if k == "s3:authtype":
        return ("REST-HEADER",)
    if k in ("aws:resourceaccount", "s3:resourceaccount"):
        if env.bucket_owner is None:
            return _Unknown("the account that owns the bucket")
        return (env.bucket_owner,)
    if k in _ABSENT_FOR_DIRECT_CALLS:
        return None
    if (
        k in ("s3:prefix", "s3:delimiter", "s3:max-keys")
        and env.action.lower() not in _LIST_ACTIONS
    ):
        return None
    if k.startswith("aws:principaltag/"):
        return _Unknown("the tags on the harvesting role (not known here)")
    if k.startswith(
        ("aws:requesttag/", "aws:tagkeys", "aws:resourcetag/", "s3:existingobjecttag/")
    ):
        return _Unknown("tags on the request or the object")
    return _Unknown(_UNKNOWN_HINTS.get(k, f"the value of {key} in the harvester's requests"))


def _normalise_overrides(context: ContextInput | None) -> dict[str, tuple[str, ...] | None]:
    out: dict[str, tuple[str, ...] | None] = {}
    for key, value in (context or {}).items():
        if value is None:
            out[key.lower()] = None
        elif isinstance(value, str):
            out[key.lower()] = (value,)
        else:
            out[key.lower()] = tuple(value)
    return out


# --- glob matching -----------------------------------------------------------------------------


class _Wild(Enum):
    STAR = "*"
    ONE = "?"


_Token = str | _Wild


def _tokenize(
    pattern: str, env: _Env | None, *, wildcards: bool, variables: bool
) -> tuple[tuple[_Token, ...], tuple[str, ...]]:
    """Split a pattern into literal characters and wildcards, resolving policy variables.

    A variable we cannot resolve becomes ``*`` and is reported, so the caller can say "may".
    """
    tokens: list[_Token] = []
    unresolved: list[str] = []
    i = 0
    while i < len(pattern):
        if variables and pattern.startswith("${", i) and (end := pattern.find("}", i + 2)) != -1:
            body = pattern[i + 2 : end]
            i = end + 1
            if body in ("*", "?", "$"):
                tokens.append(body)  # IAM's escapes for literal '*', '?' and '$'
                continue
            name, _, default = body.partition(",")
            value = _lookup(name.strip(), env) if env is not None else _Unknown("")
            if isinstance(value, tuple) and len(value) == 1:
                tokens.extend(value[0])
            elif value is None and default.strip():
                tokens.extend(default.strip().strip("'"))
            else:
                tokens.append(_Wild.STAR)
                unresolved.append("${" + body + "}")
            continue
        ch = pattern[i]
        if wildcards and ch == "*":
            tokens.append(_Wild.STAR)
        elif wildcards and ch == "?":
            tokens.append(_Wild.ONE)
        else:
            tokens.append(ch)
        i += 1
    return tuple(tokens), tuple(unresolved)


def _reachable(tokens: Sequence[_Token], text: str, *, fold: bool) -> set[int]:
    """Pattern positions an NFA can be in after reading ``text`` (``len(tokens)`` = accepted)."""

    def closure(states: Iterable[int]) -> set[int]:
        out: set[int] = set()
        for start in states:
            s = start
            out.add(s)
            while s < len(tokens) and tokens[s] is _Wild.STAR:
                s += 1
                out.add(s)
        return out

    states = closure({0})
    for ch in text:
        c = ch.lower() if fold else ch
        nxt: set[int] = set()
        for s in states:
            if s >= len(tokens):
                continue
            tok = tokens[s]
            if tok is _Wild.STAR:
                nxt.add(s)
            elif tok is _Wild.ONE or (tok.lower() if fold else tok) == c:
                nxt.add(s + 1)
        states = closure(nxt)
        if not states:
            break
    return states


def _glob(tokens: Sequence[_Token], text: str, *, fold: bool = False) -> bool:
    return len(tokens) in _reachable(tokens, text, fold=fold)


def _glob_prefix(tokens: Sequence[_Token], prefix: str) -> _Tri:
    """Does the pattern match every string that starts with ``prefix`` (YES), some, or none?"""
    states = _reachable(tokens, prefix, fold=False)
    if not states:
        return _Tri.NO
    for s in states:
        rest = tokens[s:]
        if rest and all(t is _Wild.STAR for t in rest):
            return _Tri.YES
    return _Tri.MAYBE


def _split_arn(pattern: str) -> list[str]:
    """Split on the first five colons, leaving colons inside ``${...}`` alone."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("${", i) and (end := pattern.find("}", i)) != -1:
            current.append(pattern[i : end + 1])
            i = end + 1
            continue
        if pattern[i] == ":" and len(parts) < 5:
            parts.append("".join(current))
            current = []
        else:
            current.append(pattern[i])
        i += 1
    parts.append("".join(current))
    return parts


@dataclass(frozen=True, slots=True)
class _Match:
    result: _Tri
    variables: tuple[str, ...] = ()
    """Unresolved policy variables; without them a MAYBE means "only some keys of the prefix"."""


def _match_arn(
    pattern: str, value: str, env: _Env | None, *, variables: bool, prefix: bool
) -> _Match:
    """IAM ARN matching: each of the six colon-separated parts is globbed on its own.

    With ``prefix``, ``value`` ends in ``*`` and stands for every ARN starting with the rest
    (all keys under a prefix).
    """
    is_prefix = prefix and value.endswith("*")
    literal = value[:-1] if is_prefix else value
    if pattern == "*":
        return _Match(_Tri.YES)
    p_parts = _split_arn(pattern)
    v_parts = literal.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        # Short patterns such as "arn:aws:s3:*" are matched as a whole.
        p_parts, v_parts = [pattern], [literal]
    unresolved: list[str] = []
    results: list[_Tri] = []
    for i, (pp, vv) in enumerate(zip(p_parts, v_parts, strict=True)):
        tokens, unres = _tokenize(pp, env, wildcards=True, variables=variables)
        unresolved.extend(unres)
        if is_prefix and i == len(p_parts) - 1:
            results.append(_glob_prefix(tokens, vv))
        else:
            results.append(_Tri.YES if _glob(tokens, vv) else _Tri.NO)
    result = _all(results)
    if result is _Tri.NO:
        return _Match(_Tri.NO)
    if unresolved:
        return _Match(_Tri.MAYBE, variables=tuple(unresolved))
    return _Match(result)


# --- elements ----------------------------------------------------------------------------------


def _check_actions(stmt: Statement, env: _Env) -> _Check:
    element = "NotAction" if stmt.negate_actions else "Action"
    hits = [
        a
        for a in stmt.actions
        if _glob(_tokenize(a, None, wildcards=True, variables=False)[0], env.action, fold=True)
    ]
    if stmt.negate_actions:
        if hits:
            return _Check(element, _Tri.NO, f"NotAction {_show(hits)} excludes {env.action}")
        return _Check(
            element,
            _Tri.YES,
            f"NotAction {_show(stmt.actions)} does not exclude {env.action}",
            fix=f"add {env.action} to the NotAction list of {stmt.describe()}",
        )
    if hits:
        return _Check(element, _Tri.YES, f"Action {_show(hits)} matches {env.action}")
    return _Check(element, _Tri.NO, f"Action {_show(stmt.actions)} does not match {env.action}")


def _check_resources(stmt: Statement, env: _Env) -> _Check:
    element = "NotResource" if stmt.negate_resources else "Resource"
    matches = [
        (r, _match_arn(r, env.resource, env, variables=env.variables, prefix=True))
        for r in stmt.resources
    ]
    best = _any(m.result for _, m in matches)
    yes = [r for r, m in matches if m.result is _Tri.YES]
    maybe = [(r, m) for r, m in matches if m.result is _Tri.MAYBE]
    variables = tuple(v for _, m in maybe for v in m.variables)
    maybe_why = (
        f"depends on policy variable(s) {', '.join(variables)}"
        if variables
        else f"covers only some keys of {env.resource}"
    )
    depends = variables or (("object key",) if maybe else ())
    if not stmt.negate_resources:
        if best is _Tri.YES:
            return _Check(element, _Tri.YES, f"Resource {_show(yes)} matches {env.resource}")
        if best is _Tri.MAYBE:
            return _Check(
                element,
                _Tri.MAYBE,
                f"Resource {_show([r for r, _ in maybe])} {maybe_why}",
                depends_on=depends,
                fix=f"make sure Resource of {stmt.describe()} covers {env.resource}",
            )
        return _Check(
            element, _Tri.NO, f"Resource {_show(stmt.resources)} does not match {env.resource}"
        )
    if best is _Tri.YES:
        return _Check(element, _Tri.NO, f"NotResource {_show(yes)} excludes {env.resource}")
    fix = f"add {env.resource} to the NotResource list of {stmt.describe()}"
    if best is _Tri.MAYBE:
        return _Check(
            element,
            _Tri.MAYBE,
            f"NotResource {_show([r for r, _ in maybe])} {maybe_why}",
            depends_on=depends,
            fix=fix,
        )
    return _Check(
        element,
        _Tri.YES,
        f"NotResource {_show(stmt.resources)} does not exclude {env.resource}",
        fix=fix,
    )


@dataclass(frozen=True, slots=True)
class _PrincipalHit:
    result: _Tri
    level: str
    """What the value names relative to us: everyone, account, role, session, user or other."""
    note: str


def _principal_value(ptype: str, value: str, p: PrincipalContext) -> _PrincipalHit:
    if ptype == "Service":
        return _PrincipalHit(_Tri.NO, "other", f"service principal {value} is never the harvester")
    if ptype == "Federated":
        return _PrincipalHit(
            _Tri.MAYBE,
            "other",
            f"federated principal {value} cannot be related to the harvester statically",
        )
    if ptype == "CanonicalUser":
        return _PrincipalHit(
            _Tri.MAYBE,
            "account",
            f"canonical user {value[:12]}... may be account {p.account_id}, whose canonical id "
            "is not known here",
        )
    if value == "*":
        return _PrincipalHit(_Tri.YES, "everyone", '"*" is every principal')
    if _ACCOUNT_RE.match(value):
        if value == p.account_id:
            return _PrincipalHit(_Tri.YES, "account", f"account {value} is the harvester's account")
        return _PrincipalHit(
            _Tri.NO, "other", f"account {value} is not the harvester's account {p.account_id}"
        )
    if value.startswith(("AROA", "AIDA")) and ":" not in value:
        return _PrincipalHit(
            _Tri.NO,
            "other",
            f"{value} is a unique id, which IAM shows when the role or user it named was "
            "deleted; a re-created one with the same name does not match",
        )
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return _PrincipalHit(_Tri.NO, "other", f"{value!r} is not a principal ARN")
    _, partition, service, _, account, resource = parts
    if partition != p.partition:
        return _PrincipalHit(
            _Tri.NO, "other", f"{value} is in partition {partition}, not {p.partition}"
        )
    if account != p.account_id:
        return _PrincipalHit(
            _Tri.NO, "other", f"{value} is in account {account}, not {p.account_id}"
        )
    if service == "iam" and resource == "root":
        return _PrincipalHit(_Tri.YES, "account", f"{value} is the harvester's account")
    if service == "iam" and resource.startswith("role/"):
        if p.kind is PrincipalKind.ASSUMED_ROLE and resource.rsplit("/", 1)[1] == p.name:
            return _PrincipalHit(_Tri.YES, "role", f"{value} is the harvester's role")
        return _PrincipalHit(_Tri.NO, "other", f"{value} is another role")
    if service == "iam" and resource.startswith("user/"):
        if p.kind is PrincipalKind.USER and resource.rsplit("/", 1)[1] == p.name:
            return _PrincipalHit(_Tri.YES, "user", f"{value} is the harvester's user")
        return _PrincipalHit(_Tri.NO, "other", f"{value} is another user")
    if service == "sts" and resource.startswith("assumed-role/"):
        pieces = resource.split("/")
        if p.kind is not PrincipalKind.ASSUMED_ROLE or len(pieces) != 3 or pieces[1] != p.name:
            return _PrincipalHit(_Tri.NO, "other", f"{value} is a session of another role")
        if p.session_name is None:
            return _PrincipalHit(
                _Tri.MAYBE,
                "session",
                f"{value} is a session of the harvester's role; it depends on the session name the "
                "harvester uses",
            )
        if pieces[2] == p.session_name:
            return _PrincipalHit(_Tri.YES, "session", f"{value} is the harvester's session")
        return _PrincipalHit(
            _Tri.NO, "other", f"{value} is another session of the harvester's role"
        )
    return _PrincipalHit(_Tri.NO, "other", f"{value} is not the harvester")


def _check_principal(stmt: Statement, env: _Env) -> _Check:
    p = env.principal
    assert stmt.principals is not None
    hits = [_principal_value(ptype, v, p) for ptype, values in stmt.principals for v in values]
    if not stmt.negate_principals:
        best = _any(h.result for h in hits)
        if best is _Tri.YES:
            note = next(h.note for h in hits if h.result is _Tri.YES)
            return _Check("Principal", _Tri.YES, f"Principal matches: {note}")
        if best is _Tri.MAYBE:
            note = "; ".join(h.note for h in hits if h.result is _Tri.MAYBE)
            return _Check(
                "Principal",
                _Tri.MAYBE,
                f"Principal may match: {note}",
                depends_on=("Principal",),
                fix=f"name {p.principal_arn} explicitly in Principal of {stmt.describe()}",
            )
        return _Check("Principal", _Tri.NO, f"Principal does not name {p.caller_arn}")
    return _check_not_principal(stmt, hits, p)


def _check_not_principal(
    stmt: Statement, hits: Sequence[_PrincipalHit], p: PrincipalContext
) -> _Check:
    """NotPrincipal exempts a caller only if every principal in its chain is listed.

    A session is evaluated as itself, its role and its account; AWS documents that a missing role
    or account ARN "might" still deny, and in practice listing the role ARN without the session
    ARN does not exempt the session, and listing only the account exempts only its root user.
    """
    listed = {h.level for h in hits if h.result is _Tri.YES}
    unsure = {h.level for h in hits if h.result is _Tri.MAYBE}
    stmt_name = stmt.describe()
    own_level = "session" if p.kind is PrincipalKind.ASSUMED_ROLE else "user"
    chain = {own_level: p.caller_arn, "account": p.account_root_arn}
    if p.kind is PrincipalKind.ASSUMED_ROLE:
        chain["role"] = p.principal_arn
    missing = [arn for level, arn in chain.items() if level not in listed]
    fix = (
        f"add {', '.join(missing)} to NotPrincipal of {stmt_name}, or replace NotPrincipal with "
        f'Principal "*" and a Condition ArnNotLike aws:PrincipalArn {p.principal_arn}'
    )
    if "everyone" in listed:
        return _Check("NotPrincipal", _Tri.NO, 'NotPrincipal lists "*", which exempts everyone')
    if own_level in listed and "account" in listed:
        reason = f"NotPrincipal lists {p.caller_arn} and its account, which exempts the harvester"
        if p.kind is PrincipalKind.ASSUMED_ROLE and "role" not in listed:
            reason += (
                f" (AWS recommends listing the role ARN {p.principal_arn} too; some services also "
                "check the role)"
            )
        return _Check("NotPrincipal", _Tri.NO, reason)
    if own_level in listed:
        return _Check(
            "NotPrincipal",
            _Tri.MAYBE,
            f"NotPrincipal lists {p.caller_arn} but not its account {p.account_root_arn}; AWS may "
            "check the account first and then deny",
            depends_on=("NotPrincipal account check",),
            fix=f"add {p.account_root_arn} to NotPrincipal of {stmt_name}",
        )
    if own_level in unsure:
        return _Check(
            "NotPrincipal",
            _Tri.MAYBE,
            "NotPrincipal lists sessions of the harvester's role; whether the harvester is exempt "
            "depends on the session name it uses",
            depends_on=("role session name",),
            fix=(
                f"pass the harvester's role session name to the check, and make sure "
                f"NotPrincipal of {stmt_name} lists that session's ARN and {p.account_root_arn}"
            ),
        )
    if unsure:
        return _Check(
            "NotPrincipal",
            _Tri.MAYBE,
            "NotPrincipal lists principals that cannot be compared statically: "
            + "; ".join(h.note for h in hits if h.result is _Tri.MAYBE),
            depends_on=("Principal",),
            fix=fix,
        )
    if "role" in listed:
        why = (
            f"NotPrincipal lists the role {p.principal_arn} but not the session ARN "
            f"{p.caller_arn}; requests are made by the assumed-role session, and the role ARN "
            "alone does not exempt it"
        )
    elif "account" in listed:
        why = (
            f"NotPrincipal lists only the account {p.account_root_arn}, which exempts that "
            f"account's root user, not {p.caller_arn}"
        )
    else:
        why = f"NotPrincipal does not list {p.caller_arn}, so the statement applies to it"
    return _Check("NotPrincipal", _Tri.YES, why, fix=fix)


# --- conditions --------------------------------------------------------------------------------

# base operator -> (family, negated)
_OPERATORS: Final[Mapping[str, tuple[str, bool]]] = {
    "stringequals": ("str", False),
    "stringnotequals": ("str", True),
    "stringequalsignorecase": ("stri", False),
    "stringnotequalsignorecase": ("stri", True),
    "stringlike": ("like", False),
    "stringnotlike": ("like", True),
    "arnequals": ("arn", False),
    "arnlike": ("arn", False),
    "arnnotequals": ("arn", True),
    "arnnotlike": ("arn", True),
    "bool": ("bool", False),
    "binaryequals": ("str", False),
    "ipaddress": ("ip", False),
    "notipaddress": ("ip", True),
    "numericequals": ("num=", False),
    "numericnotequals": ("num=", True),
    "numericlessthan": ("num<", False),
    "numericlessthanequals": ("num<=", False),
    "numericgreaterthan": ("num>", False),
    "numericgreaterthanequals": ("num>=", False),
    "dateequals": ("date=", False),
    "datenotequals": ("date=", True),
    "datelessthan": ("date<", False),
    "datelessthanequals": ("date<=", False),
    "dategreaterthan": ("date>", False),
    "dategreaterthanequals": ("date>=", False),
}

# Exception lists on these keys are how policies exempt principals; a fix names the key.
_PRINCIPAL_KEYS: Final = frozenset(
    {"aws:principalarn", "aws:principalaccount", "aws:principalorgid", "aws:userid"}
)


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    op = operator
    set_op: str | None = None
    head, sep, tail = op.partition(":")
    if sep and head.lower() in ("foranyvalue", "forallvalues"):
        set_op, op = head.lower(), tail
    if_exists = op.lower().endswith("ifexists")
    if if_exists:
        op = op[: -len("ifexists")]
    return set_op, op.lower(), if_exists


def _compare(family: str, actual: str, wanted: str, env: _Env) -> _Tri:
    if family in ("str", "stri"):
        tokens, unresolved = _tokenize(wanted, env, wildcards=False, variables=env.variables)
        if unresolved:
            return _Tri.MAYBE
        text = "".join(t for t in tokens if isinstance(t, str))
        return (
            _Tri.YES
            if (text.lower() == actual.lower() if family == "stri" else text == actual)
            else _Tri.NO
        )
    if family == "like":
        tokens, unresolved = _tokenize(wanted, env, wildcards=True, variables=env.variables)
        if not _glob(tokens, actual):
            return _Tri.NO
        return _Tri.MAYBE if unresolved else _Tri.YES
    if family == "arn":
        return _match_arn(wanted, actual, env, variables=env.variables, prefix=False).result
    if family == "bool":
        return _Tri.YES if actual.lower() == wanted.lower() else _Tri.NO
    if family == "ip":
        try:
            inside = ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
        except ValueError:
            return _Tri.NO
        return _Tri.YES if inside else _Tri.NO
    if family.startswith("num"):
        try:
            a, w = float(actual), float(wanted)
        except ValueError:
            return _Tri.NO
        return _Tri.YES if _ordered(family[3:], a, w) else _Tri.NO
    if family.startswith("date"):
        da, dw = _parse_date(actual), _parse_date(wanted)
        if da is None or dw is None:
            return _Tri.NO
        return _Tri.YES if _ordered(family[4:], da.timestamp(), dw.timestamp()) else _Tri.NO
    return _Tri.MAYBE


def _ordered(op: str, a: float, b: float) -> bool:
    return {"=": a == b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _parse_date(value: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_condition(cond: Condition, stmt: Statement, env: _Env) -> _Check:
    set_op, base, if_exists = _split_operator(cond.operator)
    shown = cond.describe()
    key_l = cond.key.lower()
    actual = _lookup(cond.key, env)
    note = _KNOWN_NOTES.get(key_l)

    if isinstance(actual, _Unknown):
        return _Check(
            "Condition",
            _Tri.MAYBE,
            f"Condition {shown} depends on {actual.hint}",
            depends_on=(cond.key,),
            fix=_condition_requirement(cond, stmt, base),
        )
    if base == "null":
        absent = actual is None or not actual
        want_absent = any(v.lower() == "true" for v in cond.values)
        holds = absent == want_absent
        state = "absent" if absent else "present"
        return _Check(
            "Condition",
            _Tri.YES if holds else _Tri.NO,
            f"Condition {shown} {'holds' if holds else 'does not hold'}: {cond.key} is {state} "
            "in the harvester's requests",
        )
    if base not in _OPERATORS:
        return _Check(
            "Condition",
            _Tri.MAYBE,
            f"Condition operator {cond.operator!r} is not understood here",
            depends_on=(cond.key,),
            fix=f"check the {cond.operator} condition of {stmt.describe()} by hand",
        )
    family, negated = _OPERATORS[base]
    if actual is None or not actual:
        if if_exists or set_op == "forallvalues":
            result = _Tri.YES
        elif set_op == "foranyvalue":
            result = _Tri.NO
        else:
            result = _Tri.YES if negated else _Tri.NO
        value_text = f"{cond.key} is not present in the harvester's requests"
    else:

        def one(value: str) -> _Tri:
            hit = _any(_compare(family, value, wanted, env) for wanted in cond.values)
            return _not(hit) if negated else hit

        results = [one(v) for v in actual]
        result = _all(results) if set_op == "forallvalues" else _any(results)
        value_text = f"{cond.key} is {actual[0] if len(actual) == 1 else list(actual)}"
        if note:
            value_text += f" ({note})"
        if key_l == "aws:principalarn" and not env.principal.role_path_known:
            value_text += " (assuming the role has no path; pass role_arn to be exact)"
    if result is _Tri.MAYBE:
        return _Check(
            "Condition",
            _Tri.MAYBE,
            f"Condition {shown} depends on a policy variable ({value_text})",
            depends_on=(cond.key,),
            fix=_condition_requirement(cond, stmt, base),
        )
    holds = result is _Tri.YES
    fix = None
    if holds and stmt.effect is Effect.DENY:
        fix = _deny_condition_fix(cond, stmt, env, base=base, absent=actual is None or not actual)
    return _Check(
        "Condition",
        result,
        f"Condition {shown} {'holds' if holds else 'does not hold'}: {value_text}",
        fix=fix,
    )


def _deny_condition_fix(
    cond: Condition, stmt: Statement, env: _Env, *, base: str, absent: bool
) -> str | None:
    key = cond.key.lower()
    p = env.principal
    negated = _OPERATORS[base][1]
    if absent:
        if key in _ABSENT_FOR_DIRECT_CALLS:
            return (
                f"add Bool aws:PrincipalIsAWSService true to {stmt.describe()} so it only "
                f"applies to AWS services: {cond.key} is absent from direct requests like the "
                f"harvester's, so {cond.operator} holds for them"
            )
        return None
    if not negated or key not in _PRINCIPAL_KEYS:
        return (
            f"{_condition_requirement(cond, stmt, base)}, or exempt {p.principal_arn} from "
            f"{stmt.describe()} with an ArnNotLike aws:PrincipalArn condition"
        )
    if key == "aws:principalarn":
        return (
            f"add {p.principal_arn} to the {cond.operator} aws:PrincipalArn exceptions of "
            f"{stmt.describe()}"
        )
    if key == "aws:principalaccount":
        return (
            f"add account {p.account_id} to the {cond.operator} aws:PrincipalAccount exceptions "
            f"of {stmt.describe()}"
        )
    if key == "aws:principalorgid":
        return (
            f"account {p.account_id} is in organization {p.org_id}, which {stmt.describe()} "
            f"does not accept: add {p.org_id} to its aws:PrincipalOrgID values or harvest with a "
            "role from an account in the listed organization"
        )
    return f"add the role's unique id to the aws:userid exceptions of {stmt.describe()}"


def _condition_requirement(cond: Condition, stmt: Statement, base: str) -> str:
    """What the harvester's requests must look like for a Deny to lift or an Allow to hold."""
    negated = _OPERATORS.get(base, ("", False))[1]
    # A Deny is avoided when its condition is false; an Allow is earned when it is true.
    need_match = (stmt.effect is Effect.ALLOW) != negated
    values = cond.values[0] if len(cond.values) == 1 else "one of " + ", ".join(cond.values)
    key = cond.key.lower()
    if key == "aws:sourcevpce" and need_match:
        return f"send the harvester's S3 traffic through VPC endpoint {values}"
    if key in ("aws:sourceip", "aws:vpcsourceip") and need_match:
        return f"run the harvester from an address in {values}"
    if key == "aws:sourcevpc" and need_match:
        return f"run the harvester in VPC {values} with an S3 endpoint"
    if key == "s3:prefix":
        verb = "only under" if need_match else "not under"
        return f"list {verb} prefix {values}"
    if key == "aws:principalorgid" and need_match:
        return (
            f"make sure the harvester's account is in organization {values} (give the "
            "check the organization id to confirm it)"
        )
    verb = "match" if need_match else "not match"
    return f"make {cond.key} {verb} {values} for the harvester's requests"


# --- statements --------------------------------------------------------------------------------


def _evaluate_statement(stmt: Statement, env: _Env, kind: PolicyKind) -> Finding:
    checks = [_check_actions(stmt, env), _check_resources(stmt, env)]
    if kind is PolicyKind.BUCKET:
        checks.append(_check_principal(stmt, env))
    checks.extend(_check_condition(c, stmt, env) for c in stmt.conditions)

    result = _all(c.result for c in checks)
    if result is _Tri.NO:
        return Finding(
            statement=stmt.label,
            sid=stmt.sid,
            index=stmt.index,
            policy=stmt.policy_name,
            effect=stmt.effect,
            outcome=Outcome.DOES_NOT_APPLY,
            reasons=tuple(c.reason for c in checks if c.result is _Tri.NO),
        )
    outcome = Outcome.APPLIES if result is _Tri.YES else Outcome.MAY_APPLY
    depends = tuple(dict.fromkeys(d for c in checks for d in c.depends_on))
    return Finding(
        statement=stmt.label,
        sid=stmt.sid,
        index=stmt.index,
        policy=stmt.policy_name,
        effect=stmt.effect,
        outcome=outcome,
        reasons=tuple(c.reason for c in checks),
        depends_on=depends,
        remedy=_remedy(stmt, outcome, checks, env),
    )


def _remedy(stmt: Statement, outcome: Outcome, checks: Sequence[_Check], env: _Env) -> str | None:
    who = env.principal.principal_arn
    name = stmt.describe()
    if stmt.effect is Effect.ALLOW:
        if outcome is Outcome.APPLIES:
            return None
        wanted = [c.fix for c in checks if c.result is _Tri.MAYBE and c.fix]
        return _sentence(
            f"{' and '.join(wanted) or 'check ' + name}, or grant {who} in a statement "
            "without that restriction"
        )
    if outcome is Outcome.MAY_APPLY:
        unsure = [c for c in checks if c.result is _Tri.MAYBE and c.fix]
        needs = " and ".join(c.fix for c in unsure if c.fix)
        if any(c.element == "NotPrincipal" for c in unsure):
            # Its fix already offers the Condition-based alternative.
            return _sentence(needs)
        if needs:
            return _sentence(
                f"{needs}, or exempt {who} from {name} with an ArnNotLike aws:PrincipalArn "
                "condition"
            )
        return _sentence(
            f"check {name} by hand, or exempt {who} from it with an ArnNotLike "
            "aws:PrincipalArn condition"
        )
    # A Deny that applies: the first element whose fix lifts it, most specific first.
    order = {"NotPrincipal": 0, "Condition": 1, "NotAction": 2, "NotResource": 3}
    fixes = sorted(
        (c for c in checks if c.fix and c.result is _Tri.YES), key=lambda c: order.get(c.element, 9)
    )
    if fixes and fixes[0].fix:
        return _sentence(fixes[0].fix)
    return _sentence(
        f"remove or narrow {name} so it no longer covers {env.action} on {env.resource} for {who}"
    )


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _show(items: Sequence[str]) -> str:
    return f"'{items[0]}'" if len(items) == 1 else "[" + ", ".join(f"'{i}'" for i in items) + "]"


# --- verdicts ----------------------------------------------------------------------------------


def _validate_request(action: str, resource: str) -> None:
    if ":" not in action or "*" in action or "?" in action:
        raise ValueError(f"action must be a concrete 'service:Action', got {action!r}")
    parts = resource.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise InvalidArnError(f"resource must be an ARN, got {resource!r}")


def _evaluate(
    policies: Sequence[Policy],
    *,
    kind: PolicyKind,
    principal: PrincipalContext,
    action: str,
    resource: str,
    bucket_owner: str | None,
    request_context: ContextInput | None,
) -> Evaluation:
    _validate_request(action, resource)
    overrides = _normalise_overrides(request_context)
    findings: list[Finding] = []
    for policy in policies:
        env = _Env(
            principal=principal,
            action=action,
            resource=resource,
            bucket_owner=bucket_owner,
            overrides=overrides,
            variables=policy.supports_variables,
        )
        findings.extend(_evaluate_statement(s, env, kind) for s in policy.statements)

    def pick(effect: Effect, outcome: Outcome) -> tuple[Finding, ...]:
        return tuple(f for f in findings if f.effect is effect and f.outcome is outcome)

    denies = pick(Effect.DENY, Outcome.APPLIES)
    maybe_denies = pick(Effect.DENY, Outcome.MAY_APPLY)
    allows = pick(Effect.ALLOW, Outcome.APPLIES)
    maybe_allows = pick(Effect.ALLOW, Outcome.MAY_APPLY)
    not_applying = tuple(f for f in findings if f.outcome is Outcome.DOES_NOT_APPLY)
    cross = bucket_owner is not None and bucket_owner != principal.account_id

    who = principal.caller_arn
    what = f"{action} on {resource}"
    source = "the bucket policy" if kind is PolicyKind.BUCKET else "the identity policies"
    remedy: str | None
    if denies:
        verdict = Verdict.DENIED
        explanation = (
            f"{_labels(denies)} in {source} explicitly {_verb(denies, 'deny')} {what} to {who}."
        )
        remedy = denies[0].remedy
    elif maybe_denies:
        verdict = Verdict.MAY_BE_DENIED
        keys = ", ".join(dict.fromkeys(k for f in maybe_denies for k in f.depends_on))
        explanation = (
            f"{_labels(maybe_denies)} in {source} may deny {what} to {who}, depending on {keys}"
        )
        if cross and not allows and not maybe_allows:
            explanation += (
                "; nothing in it grants the access either, which cross-account access needs"
            )
        explanation += "."
        remedy = maybe_denies[0].remedy
    elif allows:
        verdict = Verdict.ALLOWED
        explanation = f"{_labels(allows)} in {source} {_verb(allows, 'allow')} {what} to {who}"
        if cross:
            explanation += (
                f"; the bucket is in account {bucket_owner}, so the role's identity policy in "
                f"account {principal.account_id} must allow it too"
            )
        explanation += "."
        remedy = None
    elif maybe_allows:
        verdict = Verdict.MAY_BE_ALLOWED
        keys = ", ".join(dict.fromkeys(k for f in maybe_allows for k in f.depends_on))
        explanation = (
            f"{_labels(maybe_allows)} in {source} may allow {what} to {who}, depending on {keys}."
        )
        remedy = maybe_allows[0].remedy
    else:
        verdict = Verdict.NOT_GRANTED
        if kind is PolicyKind.IDENTITY:
            explanation = f"No statement in {source} grants {what} to {who}."
            remedy = f"Allow {action} on {resource} in the harvesting role's identity policy."
        elif cross:
            explanation = (
                f"No statement in the bucket policy grants {what} to {who}, and access from "
                f"account {principal.account_id} to a bucket owned by {bucket_owner} needs a "
                "bucket-policy Allow."
            )
            remedy = (
                f"Add a bucket-policy statement allowing {principal.principal_arn} {action} "
                f"on {resource}."
            )
        else:
            explanation = (
                f"No grant in this policy for {what}; in the bucket's own account the role's "
                "identity policy may grant it instead."
            )
            remedy = (
                f"If the role's identity policy does not allow {action} on {resource}, "
                "allow it there."
            )
    return Evaluation(
        kind=kind,
        principal=who,
        action=action,
        resource=resource,
        verdict=verdict,
        explanation=explanation,
        remedy=remedy,
        denies=denies,
        conditional_denies=maybe_denies,
        allows=allows,
        conditional_allows=maybe_allows,
        not_applying=not_applying,
        cross_account=cross,
    )


def _verb(findings: Sequence[Finding], verb: str) -> str:
    if len(findings) != 1:
        return verb
    return verb[:-1] + "ies" if verb.endswith("y") else verb + "s"


def _labels(findings: Sequence[Finding]) -> str:
    def name(f: Finding) -> str:
        where = f" of policy '{f.policy}'" if f.policy else ""
        return (f"'{f.sid}'" if f.sid else f"Statement[{f.index}]") + where

    if len(findings) == 1:
        only = findings[0]
        return ("Statement " if only.sid else "") + name(only)
    return "Statements " + ", ".join(name(f) for f in findings)


# --- public entry points -----------------------------------------------------------------------


def evaluate_bucket_policy(
    policy: PolicyInput | Policy,
    *,
    principal: PrincipalContext,
    action: str,
    resource: str,
    bucket_owner_account: str,
    request_context: ContextInput | None = None,
) -> Evaluation:
    """Explain what an S3 bucket policy does to ``principal`` calling ``action`` on ``resource``.

    ``resource`` may end in ``*`` to mean every object under a prefix.
    """
    if not _ACCOUNT_RE.match(bucket_owner_account):
        raise ValueError(
            f"bucket owner must be a 12-digit account id, got {bucket_owner_account!r}"
        )
    parsed = policy if isinstance(policy, Policy) else parse_policy(policy, kind=PolicyKind.BUCKET)
    return _evaluate(
        [parsed],
        kind=PolicyKind.BUCKET,
        principal=principal,
        action=action,
        resource=resource,
        bucket_owner=bucket_owner_account,
        request_context=request_context,
    )


def evaluate_identity_policy(
    policy: PolicyInput | Policy,
    *,
    principal: PrincipalContext,
    action: str,
    resource: str,
    request_context: ContextInput | None = None,
    policy_name: str | None = None,
) -> Evaluation:
    """The same for one identity policy (no Principal element: it applies to whoever holds it)."""
    parsed = (
        policy
        if isinstance(policy, Policy)
        else parse_policy(policy, kind=PolicyKind.IDENTITY, name=policy_name)
    )
    return _evaluate(
        [parsed],
        kind=PolicyKind.IDENTITY,
        principal=principal,
        action=action,
        resource=resource,
        bucket_owner=None,
        request_context=request_context,
    )


def evaluate_identity_policies(
    policies: Mapping[str, PolicyInput],
    *,
    principal: PrincipalContext,
    requests: Sequence[AccessRequest],
) -> tuple[Evaluation, ...]:
    """Evaluate all of a role's identity policies (inline and attached, by name) together.

    One :class:`Evaluation` per request, in order; findings carry the policy name. Parsing errors
    name the offending policy.
    """
    parsed = [
        parse_policy(doc, kind=PolicyKind.IDENTITY, name=name) for name, doc in policies.items()
    ]
    return tuple(
        _evaluate(
            parsed,
            kind=PolicyKind.IDENTITY,
            principal=principal,
            action=request.action,
            resource=request.resource,
            bucket_owner=None,
            request_context=request.context_mapping(),
        )
        for request in requests
    )
