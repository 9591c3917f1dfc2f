"""The normalized event: one shape for CloudTrail records and Kubernetes audit Events.

Detectors and dashboards read ``Event`` without caring where it came from. The bulky,
rarely needed parts of a record (CloudTrail ``requestParameters``/``responseElements``/
``additionalEventData``, Kubernetes ``requestObject``/``responseObject``/``annotations``)
stay raw JSON (``msgspec.Raw``); ``payload(event, name)`` decodes one on demand.

``Principal.iam_arn`` is the join key across sources: the IAM user or role ARN *without
its path*, the form the EKS authenticator reports as ``canonicalArn`` — so an assumed-role
session seen in CloudTrail and the same role acting on a cluster share one value.

The input side (``CloudTrailRecord``, ``K8sAuditEvent``) is a typed msgspec view of only
the fields we read; the streaming parsers decode straight into it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import msgspec
from msgspec import Raw, Struct, field

__all__ = [
    "DECODE_ERRORS",
    "UNKNOWN_TIME",
    "Action",
    "CloudTrailRecord",
    "Event",
    "InvalidRecordError",
    "K8sAuditEvent",
    "Outcome",
    "PayloadName",
    "Principal",
    "PrincipalType",
    "RawRef",
    "decode_events",
    "encode_events",
    "from_cloudtrail",
    "from_k8s",
    "is_audit_event",
    "k8s_event",
    "normalize_cloudtrail",
    "normalize_k8s",
    "payload",
    "role_arn_from_session_arn",
]

PrincipalType = Literal[
    "iam_user",
    "assumed_role",
    "root",
    "aws_service",
    "federated_user",
    "aws_account",
    "saml_user",
    "web_identity_user",
    "identity_center_user",
    "k8s_user",
    "k8s_serviceaccount",
    "anonymous",
    "unknown",
]
Source = Literal["cloudtrail", "eks"]
PayloadName = Literal[
    "request_parameters",
    "response_elements",
    "additional_event_data",
    "request_object",
    "response_object",
    "annotations",
]

# What msgspec raises on bad input: malformed or mistyped JSON, invalid UTF-8 in a
# string, or nesting deeper than its recursion limit.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    msgspec.DecodeError,
    UnicodeDecodeError,
    RecursionError,
)

K = TypeVar("K")
V = TypeVar("V")

# A record without a usable time keeps this sentinel rather than being dropped.
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY = Raw()


class InvalidRecordError(ValueError):
    """A record that is JSON but not of the shape ``normalize_*`` expects."""


# --- the normalized shape ---------------------------------------------------------------------


class Principal(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Who acted. ``arn`` is what the source reported; ``iam_arn`` is the cross-source key."""

    type: PrincipalType
    arn: str | None = None
    iam_arn: str | None = None
    name: str | None = None
    account: str | None = None
    principal_id: str | None = None
    access_key_id: str | None = None
    session_name: str | None = None
    session_issuer_arn: str | None = None
    invoked_by: str | None = None
    identity_provider: str | None = None
    mfa: bool | None = None
    k8s_username: str | None = None
    groups: tuple[str, ...] = ()
    impersonated_user: str | None = None


class Action(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What was done: ``service``/``name`` always; the Kubernetes fields on EKS events."""

    service: str
    name: str
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    object_name: str | None = None
    api_group: str | None = None
    api_version: str | None = None
    request_uri: str | None = None


class Outcome(Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Whether it worked; ``status_code``/``decision``/``reason`` come from Kubernetes."""

    success: bool
    error_code: str | None = None
    error_message: str | None = None
    status_code: int | None = None
    decision: str | None = None
    reason: str | None = None


class RawRef(Struct, frozen=True, kw_only=True, gc=False):
    """Where the original record lives: object ``key`` in ``bucket``, ``index``-th record."""

    bucket: str
    key: str
    index: int


class Event(Struct, frozen=True, omit_defaults=True, gc=False):
    """One CloudTrail record or Kubernetes audit Event, normalized.

    ``id`` is the CloudTrail eventID or Kubernetes auditID; ``event_type`` the CloudTrail
    eventType or the audit stage; ``read_only`` is CloudTrail's readOnly (or guessed from
    the API name) or a get/list/watch verb. Payload fields are raw JSON: ``payload()``.

    Required fields come first so that the parsers can build an event positionally: msgspec
    matches keyword arguments one by one, and 22 of them cost more than the rest of
    normalizing a record. Everywhere else, pass keywords.
    """

    id: str
    time: datetime
    source: Source
    principal: Principal
    action: Action
    outcome: Outcome
    read_only: bool
    raw: RawRef
    account: str | None = None
    region: str | None = None
    cluster: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    resources: tuple[str, ...] = ()
    event_type: str | None = None
    category: str | None = None
    request_id: str | None = None
    vpc_endpoint_id: str | None = None
    shared_event_id: str | None = None
    request_parameters: Raw = _EMPTY
    response_elements: Raw = _EMPTY
    additional_event_data: Raw = _EMPTY
    request_object: Raw = _EMPTY
    response_object: Raw = _EMPTY
    annotations: Raw = _EMPTY


def payload(event: Event, name: PayloadName) -> Any:
    """Decode one raw payload of ``event``; ``None`` when the record had none."""
    raw: Raw = getattr(event, name)
    return msgspec.json.decode(raw) if raw else None


_EVENT_ENCODER = msgspec.json.Encoder()
_EVENTS_DECODER = msgspec.json.Decoder(Event)


def encode_events(events: Iterable[Event]) -> bytes:
    """Newline-delimited JSON, one event per line; payloads are embedded verbatim."""
    return _EVENT_ENCODER.encode_lines(list(events))


def decode_events(data: bytes) -> list[Event]:
    """The inverse of ``encode_events``. Payloads reference ``data`` until copied."""
    return _EVENTS_DECODER.decode_lines(data)


# --- typed input views ------------------------------------------------------------------------
# Field names are snake_case here and renamed to the sources' camelCase (with their
# irregular "ID"/"URI"/"IP" spellings spelled out).


class _Issuer(Struct, rename="camel", gc=False):
    type: str | None = None
    principal_id: str | None = None
    arn: str | None = None
    account_id: str | None = None
    user_name: str | None = None


class _Attributes(Struct, rename="camel", gc=False):
    mfa_authenticated: str | bool | None = None


class _WebIdentity(Struct, rename="camel", gc=False):
    federated_provider: str | None = None


class _SessionContext(Struct, rename="camel", gc=False):
    session_issuer: _Issuer | None = None
    attributes: _Attributes | None = None
    web_id_federation_data: _WebIdentity | None = None


class _OnBehalfOf(Struct, rename="camel", gc=False):
    user_id: str | None = None
    identity_store_arn: str | None = None


class _UserIdentity(Struct, rename="camel", gc=False):
    type: str | None = None
    principal_id: str | None = None
    arn: str | None = None
    account_id: str | None = None
    access_key_id: str | None = None
    user_name: str | None = None
    invoked_by: str | None = None
    identity_provider: str | None = None
    session_context: _SessionContext | None = None
    on_behalf_of: _OnBehalfOf | None = None


class _Resource(Struct, gc=False):
    arn_upper: str | None = field(default=None, name="ARN")
    arn: str | None = None
    type: str | None = None


class CloudTrailRecord(Struct, rename="camel", gc=False):
    """The fields of a CloudTrail record we read; others are skipped while decoding.

    ``user_identity`` stays raw: the same identity repeats across a log file, so it is
    decoded once per distinct value (see ``_ct_principal``).
    """

    event_id: str | None = field(default=None, name="eventID")
    event_time: str | None = None
    event_source: str | None = None
    event_name: str | None = None
    aws_region: str | None = None
    recipient_account_id: str | None = None
    user_identity: Raw = _EMPTY
    source_ip_address: str | None = field(default=None, name="sourceIPAddress")
    user_agent: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    read_only: bool | str | None = None
    event_type: str | None = None
    event_category: str | None = None
    request_id: str | None = field(default=None, name="requestID")
    shared_event_id: str | None = field(default=None, name="sharedEventID")
    vpc_endpoint_id: str | None = None
    # Some exporters flatten entries to strings; keep those verbatim rather than fail.
    resources: list[_Resource | str] | None = None
    request_parameters: Raw = _EMPTY
    response_elements: Raw = _EMPTY
    additional_event_data: Raw = _EMPTY


class _K8sUser(Struct, gc=False):
    username: str | None = None
    uid: str | None = None
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] | None = None


class _ObjectRef(Struct, rename="camel", gc=False):
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    api_group: str | None = None
    api_version: str | None = None
    subresource: str | None = None


class _Status(Struct, gc=False):
    code: int | None = None
    status: str | None = None
    reason: str | None = None
    message: str | None = None


class _ObjectMeta(Struct, rename="camel", gc=False):
    creation_timestamp: str | None = None


class _Annotations(Struct, gc=False):
    decision: str | None = field(default=None, name="authorization.k8s.io/decision")
    reason: str | None = field(default=None, name="authorization.k8s.io/reason")


class K8sAuditEvent(Struct, rename="camel", gc=False):
    """The fields of an ``audit.k8s.io`` Event (v1 or v1beta1) we read.

    Fields needed only when the usual ones are missing stay raw: every string decoded
    here costs on each of millions of events.
    """

    kind: Raw = _EMPTY
    audit_id: str | None = field(default=None, name="auditID")
    stage: str | None = None
    request_uri: str | None = field(default=None, name="requestURI")
    verb: str | None = None
    user: Raw = _EMPTY
    impersonated_user: Raw = _EMPTY
    source_ips: list[str] | None = field(default=None, name="sourceIPs")
    user_agent: str | None = None
    object_ref: _ObjectRef | None = None
    response_status: Raw = _EMPTY
    request_object: Raw = _EMPTY
    response_object: Raw = _EMPTY
    annotations: Raw = _EMPTY
    request_received_timestamp: str | None = None
    stage_timestamp: Raw = _EMPTY
    timestamp: Raw = _EMPTY  # v1beta1
    metadata: Raw = _EMPTY  # creationTimestamp, in old captures


CLOUDTRAIL_DECODER = msgspec.json.Decoder(CloudTrailRecord)
K8S_DECODER = msgspec.json.Decoder(K8sAuditEvent)
# Unions are not type[T] to mypy: annotate what these decoders return.
_IDENTITY_DECODER: msgspec.json.Decoder[_UserIdentity | None] = msgspec.json.Decoder(
    _UserIdentity | None
)
_K8S_USER_DECODER: msgspec.json.Decoder[_K8sUser | None] = msgspec.json.Decoder(_K8sUser | None)
_ANNOTATIONS_DECODER: msgspec.json.Decoder[_Annotations | None] = msgspec.json.Decoder(
    _Annotations | None
)


# --- helpers ----------------------------------------------------------------------------------

_NULL = Raw(b"null")
# Distinct identities per log file are few; caching their normalized form skips most of
# the work. The bound keeps memory flat on an object with unusually many.
_CACHE_LIMIT = 8192


def _to_utc(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return UNKNOWN_TIME
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    return parsed.replace(tzinfo=UTC) if tz is None else parsed.astimezone(UTC)


# CloudTrail repeats the same second many times per object: the cache makes that free.
# (Kubernetes stamps carry microseconds, so they skip it.)
_parse_time = functools.lru_cache(maxsize=_CACHE_LIMIT)(_to_utc)


def _present(value: Raw) -> Raw:
    """JSON null is stored as "absent"."""
    if not value or (len(value) == 4 and value == _NULL):
        return _EMPTY
    return value


def _raw(value: Raw) -> Raw:
    # Raw values decoded from a batch point into the whole batch: copy so an event kept
    # for long does not pin it.
    value = _present(value)
    return value.copy() if value else value


def _arn_account(arn: str | None) -> str | None:
    if not arn:
        return None
    parts = arn.split(":", 5)
    return parts[4] or None if len(parts) == 6 else None


def role_arn_from_session_arn(arn: str) -> str | None:
    """``arn:aws:sts::1:assumed-role/R/s`` → ``arn:aws:iam::1:role/R`` (no path, as EKS does)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sts" or not parts[5].startswith("assumed-role/"):
        return None
    pieces = parts[5].split("/")
    if len(pieces) < 3:
        return None
    return f"arn:{parts[1]}:iam::{parts[4]}:role/{pieces[1]}"


def _session_from_arn(arn: str | None) -> str | None:
    if arn and ":assumed-role/" in arn:
        pieces = arn.split("/")
        if len(pieces) >= 3:
            return pieces[-1]
    return None


def _canonical_iam_arn(arn: str | None) -> str | None:
    """The cross-source key for an ARN a principal presented."""
    if not arn:
        return None
    role = role_arn_from_session_arn(arn)
    if role is not None:
        return role
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith(("user/", "role/")):
        kind, _, rest = parts[5].partition("/")
        # Paths are dropped (the authenticator does the same), the last segment is the name.
        return f"arn:{parts[1]}:iam::{parts[4]}:{kind}/{rest.rsplit('/', 1)[-1]}"
    return arn


def _mfa(value: str | bool | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    return None


class _MFAUsed(Struct, gc=False):
    mfa_used: str | bool | None = field(default=None, name="MFAUsed")


_MFA_DECODER: msgspec.json.Decoder[_MFAUsed | None] = msgspec.json.Decoder(_MFAUsed | None)


_MFA_USED_KEY = re.compile(rb'"MFAUsed"')


def _mfa_used(additional: Raw) -> bool | None:
    # Only console sign-ins carry MFAUsed; a search of the raw bytes (in place, no copy)
    # spares decoding everything else.
    if not additional or _MFA_USED_KEY.search(additional) is None:
        return None
    try:
        decoded = _MFA_DECODER.decode(additional)
    except DECODE_ERRORS:
        return None
    return _mfa(decoded.mfa_used) if decoded is not None else None


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


_READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Lookup")
_K8S_READ_VERBS = frozenset(("get", "list", "watch"))


# --- CloudTrail -------------------------------------------------------------------------------


_CT_TYPES: dict[str, PrincipalType] = {
    "IAMUser": "iam_user",
    "AssumedRole": "assumed_role",
    "Root": "root",
    "AWSService": "aws_service",
    "FederatedUser": "federated_user",
    "AWSAccount": "aws_account",
    "SAMLUser": "saml_user",
    "WebIdentityUser": "web_identity_user",
    "IdentityCenterUser": "identity_center_user",
}
_UNKNOWN_PRINCIPAL = Principal(type="unknown")
_CT_PRINCIPALS: dict[bytes, Principal] = {}


def _decode_identity(raw: Raw) -> Principal:
    try:
        identity = _IDENTITY_DECODER.decode(raw)
    except DECODE_ERRORS as exc:
        raise InvalidRecordError(f"userIdentity: {exc}") from None
    return _UNKNOWN_PRINCIPAL if identity is None else _identity_principal(identity)


def _identity_principal(identity: _UserIdentity) -> Principal:
    kind = _CT_TYPES.get(identity.type or "", "unknown")
    arn = identity.arn or None
    context = identity.session_context
    attributes = context.attributes if context is not None else None
    mfa = _mfa(attributes.mfa_authenticated) if attributes is not None else None
    issuer = context.session_issuer if context is not None else None
    issuer_arn = issuer.arn if issuer is not None and issuer.arn else None
    name = identity.user_name
    session_name = None
    iam_arn = None
    provider = identity.identity_provider
    if kind == "assumed_role":
        session_name = _session_from_arn(arn)
        iam_arn = (
            (role_arn_from_session_arn(arn) if arn else None)
            or _canonical_iam_arn(issuer_arn)
            or arn
        )
        if issuer is not None and issuer.user_name:
            name = issuer.user_name
        elif iam_arn:
            name = iam_arn.rsplit("/", 1)[-1]
        web = context.web_id_federation_data if context is not None else None
        if web is not None and web.federated_provider:
            provider = web.federated_provider
    elif kind in ("iam_user", "root"):
        iam_arn = _canonical_iam_arn(arn)
        if kind == "root":
            name = name or "root"
    elif kind == "federated_user":
        iam_arn = arn
        if arn and not name:
            name = arn.rsplit("/", 1)[-1]
    elif kind == "aws_service":
        name = identity.invoked_by
    elif kind == "identity_center_user":
        on_behalf = identity.on_behalf_of
        if on_behalf is not None:
            name = on_behalf.user_id
            provider = on_behalf.identity_store_arn
    elif kind == "aws_account" or (kind == "unknown" and not name):
        name = identity.principal_id
    return Principal(
        type=kind,
        arn=arn,
        iam_arn=iam_arn,
        name=name,
        account=identity.account_id or _arn_account(arn),
        principal_id=identity.principal_id,
        access_key_id=identity.access_key_id or None,
        session_name=session_name,
        session_issuer_arn=issuer_arn,
        invoked_by=identity.invoked_by,
        identity_provider=provider,
        mfa=mfa,
    )


def _ct_principal(raw_identity: Raw, additional: Raw) -> Principal:
    if not raw_identity:
        principal = _UNKNOWN_PRINCIPAL
    else:
        key = bytes(raw_identity)
        principal = _CT_PRINCIPALS.get(key) or _remember(
            _CT_PRINCIPALS, key, _decode_identity(raw_identity)
        )
    used = _mfa_used(additional)
    if used is not None and used != principal.mfa:
        # A console sign-in states MFA use for this login, whatever the session says.
        principal = msgspec.structs.replace(principal, mfa=used)
    return principal


_SUCCESS = Outcome(success=True)
_ACTIONS: dict[tuple[str | None, str], Action] = {}


def _ct_action(event_source: str | None, name: str) -> Action:
    action = _ACTIONS.get((event_source, name))
    if action is None:
        service = event_source.removesuffix(".amazonaws.com") if event_source else "unknown"
        action = _remember(_ACTIONS, (event_source, name), Action(service=service, name=name))
    return action


def _ct_read_only(value: bool | str | None, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return name.startswith(_READ_PREFIXES)


def _resource_name(resource: _Resource | str) -> str:
    if isinstance(resource, str):
        return resource
    return resource.arn_upper or resource.arn or resource.type or ""


def from_cloudtrail(
    record: CloudTrailRecord, *, bucket: str, key: str, index: int, copy_payloads: bool = True
) -> Event:
    """Normalize a decoded ``CloudTrailRecord`` (the parsers' fast path).

    ``copy_payloads=False`` leaves the raw payloads referring to the decoded batch (about
    32 KB), which the event then keeps alive: right for a caller that encodes events and
    drops them, wasteful for one that keeps a few of many.
    Raises ``InvalidRecordError`` when ``userIdentity`` is not an identity object.
    """
    raw = _raw if copy_payloads else _present
    name = record.event_name or "unknown"
    additional = record.additional_event_data
    error_code = record.error_code or None
    error_message = record.error_message or None
    response = record.response_elements
    outcome = _SUCCESS
    if error_code is not None or error_message is not None:
        outcome = Outcome(success=False, error_code=error_code, error_message=error_message)
    elif (
        response
        and record.event_source == "signin.amazonaws.com"
        and b'"Failure"' in bytes(response)
    ):
        # Sign-in events (ConsoleLogin, PasswordUpdated, CheckMfa, SwitchRole…) record a
        # failure as {"<EventName>": "Failure"} in responseElements, not as an errorCode.
        outcome = Outcome(success=False)
    resources: tuple[str, ...] = ()
    if record.resources:
        resources = tuple(_resource_name(r) for r in record.resources if r)
    event_time = record.event_time
    # Positional, in Event's field order (see Event on why).
    return Event(
        record.event_id or record.request_id or f"{key}#{index}",  # id
        _parse_time(event_time) if event_time else UNKNOWN_TIME,  # time
        "cloudtrail",  # source
        _ct_principal(record.user_identity, additional),  # principal
        _ct_action(record.event_source, name),  # action
        outcome,  # outcome
        _ct_read_only(record.read_only, name),  # read_only
        RawRef(bucket=bucket, key=key, index=index),  # raw
        record.recipient_account_id,  # account
        record.aws_region,  # region
        None,  # cluster
        record.source_ip_address,  # source_ip
        record.user_agent,  # user_agent
        resources,  # resources
        record.event_type,  # event_type
        record.event_category,  # category
        record.request_id,  # request_id
        record.vpc_endpoint_id,  # vpc_endpoint_id
        record.shared_event_id,  # shared_event_id
        raw(record.request_parameters),  # request_parameters
        raw(response),  # response_elements
        raw(additional),  # additional_event_data
    )


def _as_json(value: Mapping[str, Any] | bytes | str, what: str) -> bytes | str:
    if isinstance(value, bytes | str):
        return value
    if not isinstance(value, Mapping):
        raise InvalidRecordError(f"a {what} must be a JSON object, got {type(value).__name__}")
    return msgspec.json.encode(value)


def normalize_cloudtrail(
    record: CloudTrailRecord | Mapping[str, Any] | bytes | str,
    *,
    bucket: str,
    key: str,
    index: int,
) -> Event:
    """Normalize one CloudTrail record given as a dict, JSON text or ``CloudTrailRecord``."""
    if not isinstance(record, CloudTrailRecord):
        try:
            record = CLOUDTRAIL_DECODER.decode(_as_json(record, "CloudTrail record"))
        except DECODE_ERRORS as exc:
            raise InvalidRecordError(f"not a CloudTrail record: {exc}") from None
    return from_cloudtrail(record, bucket=bucket, key=key, index=index)


# --- Kubernetes -------------------------------------------------------------------------------


_SERVICEACCOUNT_PREFIX = "system:serviceaccount:"
_AUTHENTICATOR_PREFIX = "aws-iam-authenticator:"
_K8S_PRINCIPALS: dict[bytes, Principal] = {}


def _first(extra: dict[str, list[str]] | None, name: str) -> str | None:
    if not extra:
        return None
    values = extra.get(name)
    return values[0] if values else None


def _decode_user(raw: Raw, what: str) -> _K8sUser | None:
    if not raw:
        return None
    try:
        return _K8S_USER_DECODER.decode(raw)
    except DECODE_ERRORS as exc:
        raise InvalidRecordError(f"{what}: {exc}") from None


def _user_principal(user: _K8sUser | None, impersonated: _K8sUser | None) -> Principal:
    if user is None:
        return _UNKNOWN_PRINCIPAL
    username = user.username
    groups = user.groups
    extra = user.extra
    if username is None:
        kind: PrincipalType = "unknown"
    elif username == "system:anonymous" or "system:unauthenticated" in groups:
        kind = "anonymous"
    elif username.startswith(_SERVICEACCOUNT_PREFIX):
        kind = "k8s_serviceaccount"
    else:
        kind = "k8s_user"
    arn = _first(extra, "arn")
    if arn is None and username and username.startswith("arn:aws"):
        # EKS access entries without a username template report the IAM ARN itself.
        arn = username
    canonical = _first(extra, "canonicalArn")
    principal_id = _first(extra, "principalId")
    account = _arn_account(arn or canonical)
    uid = user.uid
    if uid and uid.startswith(_AUTHENTICATOR_PREFIX):
        _, _, rest = uid.partition(":")
        uid_account, _, uid_principal = rest.partition(":")
        account = account or uid_account or None
        principal_id = principal_id or uid_principal or None
    return Principal(
        type=kind,
        arn=arn,
        iam_arn=_canonical_iam_arn(canonical or arn),
        name=username,
        account=account,
        principal_id=principal_id,
        access_key_id=_first(extra, "accessKeyId"),
        session_name=_first(extra, "sessionName") or _session_from_arn(arn),
        session_issuer_arn=role_arn_from_session_arn(arn) if arn else None,
        k8s_username=username,
        groups=groups,
        impersonated_user=impersonated.username if impersonated is not None else None,
    )


_EVENT_KIND = Raw(b'"Event"')
_STAMP_DECODER: msgspec.json.Decoder[str | None] = msgspec.json.Decoder(str | None)
_META_DECODER: msgspec.json.Decoder[_ObjectMeta | None] = msgspec.json.Decoder(_ObjectMeta | None)


def is_audit_event(event: K8sAuditEvent) -> bool:
    """Whether a decoded object looks like an audit Event at all."""
    return bool(event.audit_id or event.verb or event.kind == _EVENT_KIND)


def _fallback_stamp(event: K8sAuditEvent) -> str | None:
    try:
        for raw in (event.stage_timestamp, event.timestamp):
            stamp = _STAMP_DECODER.decode(raw) if raw else None
            if stamp:
                return stamp
        meta = _META_DECODER.decode(event.metadata) if event.metadata else None
    except DECODE_ERRORS:
        return None  # an odd fallback stamp is as good as none
    return meta.creation_timestamp if meta is not None else None


def _k8s_principal(user: Raw, impersonated: Raw) -> Principal:
    if not user:
        return _UNKNOWN_PRINCIPAL
    key = bytes(user)
    if impersonated:
        key += b"\n" + bytes(impersonated)
    principal = _K8S_PRINCIPALS.get(key)
    if principal is None:
        principal = _user_principal(
            _decode_user(user, "user"), _decode_user(impersonated, "impersonatedUser")
        )
        _remember(_K8S_PRINCIPALS, key, principal)
    return principal


_K8S_OUTCOMES: dict[bytes, Outcome] = {}
_STATUS_DECODER: msgspec.json.Decoder[_Status | None] = msgspec.json.Decoder(_Status | None)


def _k8s_outcome(status: Raw, annotations: Raw) -> Outcome:
    # Status and authorization annotations repeat across a cluster's events: both stay
    # raw, and their bytes are the cache key.
    key = bytes(status) + b"\n" + bytes(annotations)
    outcome = _K8S_OUTCOMES.get(key)
    if outcome is None:
        try:
            decoded = _STATUS_DECODER.decode(status) if status else None
        except DECODE_ERRORS as exc:
            raise InvalidRecordError(f"responseStatus: {exc}") from None
        outcome = _remember(_K8S_OUTCOMES, key, _build_k8s_outcome(decoded, annotations))
    return outcome


def _build_k8s_outcome(status: _Status | None, annotations: Raw) -> Outcome:
    decision = reason = None
    if annotations:
        try:
            decoded = _ANNOTATIONS_DECODER.decode(annotations)
        except DECODE_ERRORS:
            decoded = None
        if decoded is not None:
            decision, reason = decoded.decision, decoded.reason
    code = status.code if status is not None else None
    success = decision != "forbid"
    if code is not None:
        success = success and code < 400
    elif status is not None and status.status == "Failure":
        success = False
    failed = status is not None and not success
    return Outcome(
        success=success,
        error_code=status.reason if failed and status is not None else None,
        error_message=status.message if failed and status is not None else None,
        status_code=code,
        decision=decision,
        reason=reason or None,
    )


def from_k8s(
    event: K8sAuditEvent,
    *,
    cluster: str | None,
    account: str | None,
    region: str | None,
    bucket: str,
    key: str,
    index: int,
) -> Event:
    """Normalize a decoded ``K8sAuditEvent`` (the parsers' fast path).

    Raises ``InvalidRecordError`` when ``user`` is not a user object.
    """
    return k8s_event(event, cluster, account, region, bucket, key, index)


def k8s_event(  # noqa: PLR0917  positional on purpose: called once per event
    event: K8sAuditEvent,
    cluster: str | None,
    account: str | None,
    region: str | None,
    bucket: str,
    key: str,
    index: int,
) -> Event:
    """``from_k8s`` with positional arguments, for the parser's per-event loop."""
    verb = event.verb or "unknown"
    ref = event.object_ref
    uri = event.request_uri
    resources: tuple[str, ...] = ()
    if ref is None:
        action = Action(service="k8s", name=verb, verb=verb, request_uri=uri)
    else:
        name = ref.name or None
        namespace = ref.namespace or None
        resource = ref.resource
        action = Action(
            service="k8s",
            name=verb,
            verb=verb,
            resource=resource,
            subresource=ref.subresource or None,
            namespace=namespace,
            object_name=name,
            api_group=ref.api_group or None,
            api_version=ref.api_version,
            request_uri=uri,
        )
        if name and resource:
            resources = (
                f"namespaces/{namespace}/{resource}/{name}" if namespace else f"{resource}/{name}",
            )
    stamp = event.request_received_timestamp or _fallback_stamp(event)
    ips = event.source_ips
    # Each Event is decoded from its own small buffer: its payloads need no copy. (A
    # literal null stays as such here; payload() reads it as None all the same.)
    annotations = event.annotations
    return Event(
        id=event.audit_id or f"{key}#{index}",
        time=_to_utc(stamp) if stamp else UNKNOWN_TIME,
        source="eks",
        account=account,
        region=region,
        cluster=cluster,
        principal=_k8s_principal(event.user, event.impersonated_user),
        source_ip=ips[0] if ips else None,
        user_agent=event.user_agent,
        action=action,
        resources=resources,
        outcome=_k8s_outcome(event.response_status, annotations),
        read_only=verb in _K8S_READ_VERBS,
        event_type=event.stage,
        raw=RawRef(bucket=bucket, key=key, index=index),
        request_object=event.request_object,
        response_object=event.response_object,
        annotations=annotations,
    )


def normalize_k8s(
    event: K8sAuditEvent | Mapping[str, Any] | bytes | str,
    *,
    cluster: str | None,
    account: str | None,
    region: str | None,
    bucket: str,
    key: str,
    index: int,
) -> Event:
    """Normalize one Kubernetes audit Event given as a dict, JSON text or ``K8sAuditEvent``."""
    if not isinstance(event, K8sAuditEvent):
        try:
            event = K8S_DECODER.decode(_as_json(event, "Kubernetes audit Event"))
        except DECODE_ERRORS as exc:
            raise InvalidRecordError(f"not a Kubernetes audit Event: {exc}") from None
    return from_k8s(
        event, cluster=cluster, account=account, region=region, bucket=bucket, key=key, index=index
    )
