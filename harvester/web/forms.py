"""Input from the console and the API, validated server-side with the CLI's own rules.

Every function here collects errors per field (``FormErrors``) so a form can show each one
beside its input; the services then validate again and their ``InvalidValue.field`` is mapped
back onto the form's field names. Secrets are never part of an error message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.crypto import SecretBox
from harvester.db.models import Source
from harvester.detect.engine import DEFAULT_CATALOG
from harvester.detect.model import Severity
from harvester.durations import parse_duration
from harvester.inventory import service
from harvester.inventory import validation as v
from harvester.inventory.spec import DEFAULT_SESSION_NAME, ClusterSpec, RoleSpec, StorageSpec
from harvester.web.queries import AnomalyFilter

__all__ = [
    "FORM_LEVEL",
    "AnomalyFilterInput",
    "FormErrors",
    "NewRoleInput",
    "StorageEdit",
    "SuppressionInput",
    "apply_storage_edit",
    "form_field",
    "parse_anomaly_filter",
    "parse_suppression",
    "parse_time",
]

FORM_LEVEL = "__all__"
MAX_FIELD_LENGTH = 4096
_DETECTOR = re.compile(r"[A-Za-z0-9*][A-Za-z0-9._*-]{0,99}")
_LONGEST = timedelta(days=3650)


class FormErrors(ValueError):
    """Errors by form field name (``__all__`` for the form as a whole)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {m}" for k, m in self.errors.items()))


def form_field(service_field: str) -> str:
    """The form field an ``InvalidValue.field`` from the services is about."""
    if service_field in ("bucket", "region", "prefix", "role"):
        return service_field
    if service_field.startswith("new_role."):
        return service_field
    if service_field == "secret_access_key":  # upsert_role's "no stored secret yet"
        return "new_role.secret_access_key"
    return FORM_LEVEL


def _check(errors: dict[str, str], field: str, rule: Callable[[], object]) -> None:
    if field in errors:
        return
    try:
        rule()
    except v.InvalidValue as exc:
        errors[field] = exc.rule


# --- storage configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class NewRoleInput:
    """A role config to create with the edit; the secret is write-only and never shown again."""

    name: str
    role_arn: str | None = None
    session_name: str = DEFAULT_SESSION_NAME
    partition: str | None = None
    authentication: str = "instance-profile"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    via_role_arn: str | None = None
    external_id: str | None = None

    def __repr__(self) -> str:
        return f"NewRoleInput(name={self.name!r}, authentication={self.authentication!r})"


@dataclass(frozen=True)
class StorageEdit:
    """A source's storage configuration as edited: resource name, region, prefix, role.

    ``role`` names an existing role config (None: the base credentials, no role); with
    ``new_role`` that role config is created and used instead.
    """

    bucket: str
    region: str
    prefix: str | None
    role: str | None
    new_role: NewRoleInput | None = None


def _new_role_spec(
    session: Session, new: NewRoleInput, *, partition: str, errors: dict[str, str]
) -> RoleSpec:
    role_partition = new.partition or partition
    keys = new.authentication == "access-keys"
    spec = RoleSpec(
        name=new.name,
        role_arn=new.role_arn or None,
        session_name=new.session_name or DEFAULT_SESSION_NAME,
        partition=role_partition,
        authentication=new.authentication,
        via_role_arn=new.via_role_arn or None,
        external_id=new.external_id or None,
        access_key_id=(new.access_key_id or None) if keys else None,
        secret_access_key=(new.secret_access_key or None) if keys else None,
    )
    _check(errors, "new_role.name", lambda: v.entity_name(spec.name, "new_role.name"))
    if "new_role.name" not in errors and service.role_exists(session, name=spec.name):
        errors["new_role.name"] = "a role config with this name exists: choose it from the list"
    _check(errors, "new_role.partition", lambda: v.partition(role_partition, "new_role.partition"))
    if "new_role.partition" not in errors and role_partition != partition:
        errors["new_role.partition"] = (
            f"the account is in partition {partition!r}: its role config must be too"
        )
    if spec.role_arn is not None:
        _check(
            errors,
            "new_role.role_arn",
            lambda: v.role_arn(
                spec.role_arn or "", expected_partition=role_partition, field="new_role.role_arn"
            ),
        )
    if spec.via_role_arn is not None:
        _check(
            errors,
            "new_role.via_role_arn",
            lambda: v.role_arn(
                spec.via_role_arn or "",
                expected_partition=role_partition,
                field="new_role.via_role_arn",
            ),
        )
    if spec.external_id is not None:
        _check(
            errors,
            "new_role.external_id",
            lambda: v.external_id(spec.external_id or "", "new_role.external_id"),
        )
    _check(
        errors,
        "new_role.session_name",
        lambda: v.session_name(spec.session_name, "new_role.session_name"),
    )
    _check(
        errors,
        "new_role.authentication",
        lambda: v.authentication(spec.authentication, "new_role.authentication"),
    )
    if keys:
        if spec.access_key_id is None:
            errors.setdefault("new_role.access_key_id", "access keys need an access key id")
        else:
            _check(
                errors,
                "new_role.access_key_id",
                lambda: v.access_key_id(spec.access_key_id or "", "new_role.access_key_id"),
            )
        if spec.secret_access_key is None:
            errors.setdefault(
                "new_role.secret_access_key", "a new access key needs its secret access key"
            )
        else:
            _check(
                errors,
                "new_role.secret_access_key",
                lambda: v.secret_access_key(
                    spec.secret_access_key or "", "new_role.secret_access_key"
                ),
            )
    if not any(k.startswith("new_role.") for k in errors):
        # The cross-field rules (keys without access-keys, via without role_arn) live here.
        try:
            spec.validate("new_role")
        except v.InvalidValue as exc:
            errors[form_field(exc.field)] = exc.rule
    return spec


def apply_storage_edit(
    session: Session, *, source: Source, edit: StorageEdit, box: SecretBox, clock: Clock
) -> Source:
    """Validate every field, then write through the inventory services (one transaction).

    Raises :class:`FormErrors`; the caller's transaction must roll back on it, so a role
    config created for an edit that then fails is not left behind.
    """
    errors: dict[str, str] = {}
    account = source.account
    _check(errors, "bucket", lambda: v.bucket_name(edit.bucket, "bucket"))
    _check(errors, "region", lambda: v.region(edit.region, in_partition=account.partition))
    if source.kind == service.CLOUDTRAIL:
        _check(
            errors,
            "prefix",
            lambda: v.cloudtrail_prefix(
                edit.prefix or "",
                account_id=account.account_id,
                organization_id=account.organization_id,
            ),
        )
    elif edit.prefix is not None and edit.prefix != source.prefix:
        errors["prefix"] = (
            "an EKS cluster's prefix is derived (EKSLogs/<account>/<cluster>) and cannot be edited"
        )
    role_name = edit.role
    spec: RoleSpec | None = None
    if edit.new_role is not None:
        spec = _new_role_spec(session, edit.new_role, partition=account.partition, errors=errors)
        role_name = spec.name
    elif role_name is not None and not service.role_exists(session, name=role_name):
        errors["role"] = "no role config with this name"
    if errors:
        raise FormErrors(errors)
    try:
        if spec is not None:
            service.upsert_role(session, spec, box=box, clock=clock)
        if source.kind == service.EKS:
            cluster = ClusterSpec(
                source.cluster_name, edit.region, edit.bucket, role_name, source.enabled
            )
            return service.set_cluster(session, account=account, cluster=cluster, clock=clock)
        storage = StorageSpec(edit.bucket, edit.region, edit.prefix or "", role_name)
        return service.set_cloudtrail_storage(
            session, account=account, storage=storage, clock=clock
        )
    except v.InvalidValue as exc:
        field = form_field(exc.field)
        if field == "role" and spec is not None:
            field = "new_role.partition"
        raise FormErrors({field: exc.rule}) from None


# --- times and filters ------------------------------------------------------------------------


def parse_time(value: str, field: str, *, now: datetime, future: bool) -> datetime:
    """A duration from now (back, or ahead when ``future``) or an ISO 8601 time."""
    text = value.strip()
    try:
        delta = parse_duration(text)
    except (ValueError, OverflowError):
        pass
    else:
        if delta > _LONGEST:
            raise v.InvalidValue(field, value, "a duration is at most 3650 days")
        return now + delta if future else now - delta
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise v.InvalidValue(
            field, value, "give a duration (30m, 24h, 7d) or a time (2026-01-15T12:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class AnomalyFilterInput:
    """The anomaly filters as typed, echoed back into the form."""

    severity: str = ""
    account: str = ""
    cluster: str = ""
    detector: str = ""
    status: str = ""
    since: str = ""
    until: str = ""
    limit: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> AnomalyFilterInput:
        names = cls.__dataclass_fields__
        return cls(**{k: str(values.get(k, "")).strip()[:MAX_FIELD_LENGTH] for k in names})

    def query_string(self) -> dict[str, str]:
        return {k: val for k, val in self.__dict__.items() if val}


def parse_anomaly_filter(raw: AnomalyFilterInput, *, now: datetime) -> AnomalyFilter:
    errors: dict[str, str] = {}
    severity: Severity | None = None
    if raw.severity:
        try:
            severity = Severity.parse(raw.severity)
        except ValueError:
            errors["severity"] = "use info, low, medium, high or critical"
    if raw.account:
        _check(errors, "account", lambda: v.account_id(raw.account, "account"))
    if raw.cluster:
        _check(errors, "cluster", lambda: v.cluster_name(raw.cluster, "cluster"))
    if raw.detector and not _DETECTOR.fullmatch(raw.detector):
        errors["detector"] = "a detector id is letters, digits and ._- (* as a wildcard)"
    if raw.status and raw.status not in ("open", "acked"):
        errors["status"] = "the status is open or acked"
    since = until = None
    if raw.since:
        try:
            since = parse_time(raw.since, "since", now=now, future=False)
        except v.InvalidValue as exc:
            errors["since"] = exc.rule
    if raw.until:
        try:
            until = parse_time(raw.until, "until", now=now, future=False)
        except v.InvalidValue as exc:
            errors["until"] = exc.rule
    if since is not None and until is not None and until < since:
        errors["until"] = "the end of the window is before its start"
    limit = 200
    if raw.limit:
        if not (raw.limit.isascii() and raw.limit.isdigit()) or not 1 <= int(raw.limit) <= 1000:
            errors["limit"] = "the limit is a number from 1 to 1000"
        else:
            limit = int(raw.limit)
    if errors:
        raise FormErrors(errors)
    return AnomalyFilter(
        min_severity=severity,
        account=raw.account or None,
        cluster=raw.cluster or None,
        detector=raw.detector or None,
        status=raw.status or None,
        since=since,
        until=until,
        limit=limit,
    )


# --- suppressions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressionInput:
    detector: str
    principal: str | None
    account: str | None
    until: datetime | None
    reason: str | None


def parse_suppression(
    *,
    detector: str,
    principal: str | None,
    account: str | None,
    until: str | None,
    reason: str | None,
    now: datetime,
) -> SuppressionInput:
    """Check a suppression rule the way ``harvester suppress add`` does."""
    errors: dict[str, str] = {}
    detector = detector.strip()
    known = {spec.id for spec in DEFAULT_CATALOG.specs()}
    if not _DETECTOR.fullmatch(detector):
        errors["detector"] = "a detector id is letters, digits and ._- (* as a wildcard)"
    elif "*" not in detector and detector not in known:
        errors["detector"] = "no such detector (see: harvester anomalies detectors)"
    principal = (principal or "").strip() or None
    if principal is not None and len(principal) > 2048:
        errors["principal"] = "a principal is at most 2048 characters"
    account = (account or "").strip() or None
    if account is not None:
        _check(errors, "account", lambda: v.account_id(account or "", "account"))
    end: datetime | None = None
    if until and until.strip():
        try:
            end = parse_time(until, "until", now=now, future=True)
        except v.InvalidValue as exc:
            errors["until"] = exc.rule
        else:
            if end <= now:
                errors["until"] = "the end of a suppression must be in the future"
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 1000:
        errors["reason"] = "a reason is at most 1000 characters"
    if errors:
        raise FormErrors(errors)
    return SuppressionInput(
        detector=detector, principal=principal, account=account, until=end, reason=reason
    )
