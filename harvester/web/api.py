"""The JSON API under ``/api/v1``: the inventory, sources, findings, and the few writes.

Reads need a viewer (or nothing with ``--public-read``), writes an admin; see
:mod:`harvester.web.auth`. Anomalies and incidents come in the shape ``harvester anomalies
show -o json`` prints, so a script can move between the CLI and the API.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.orm import Session

from harvester.aws.doctor import report_to_json, run_doctor
from harvester.aws.identity import IdentityConfigError, source_info_from_row
from harvester.crypto import SecretKeyError, mask
from harvester.db.models import RoleConfig, Source
from harvester.detect import repository as repo
from harvester.detect.model import Severity
from harvester.detect.render import anomaly_record, incident_record
from harvester.inventory import service
from harvester.inventory import validation as v
from harvester.inventory.spec import DEFAULT_SESSION_NAME, RoleSpec
from harvester.web import queries, records
from harvester.web.auth import Principal, api_reader, api_writer
from harvester.web.forms import (
    AnomalyFilterInput,
    FormErrors,
    NewRoleInput,
    StorageEdit,
    apply_storage_edit,
    parse_anomaly_filter,
    parse_suppression,
    parse_time,
)
from harvester.web.state import WebState, web_state

__all__ = ["router"]

Reader = Annotated[Principal, Depends(api_reader)]
Writer = Annotated[Principal, Depends(api_writer)]
State = Annotated[WebState, Depends(web_state)]

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or an invalid API token / login session"},
}
_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_AUTH_RESPONSES,
    403: {"description": "Not an admin, or a cookie-authenticated write without X-CSRF-Token"},
    404: {"description": "No such item"},
    422: {"description": "Invalid input: `errors` maps each field to what is wrong"},
}

router = APIRouter(prefix="/api/v1", responses=_AUTH_RESPONSES)


def _invalid(errors: dict[str, str]) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        {"message": "invalid input", "errors": errors},
    )


def _not_found(exc: service.NotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


def _row(session: Session, state: WebState, source: Source) -> queries.SourceRow:
    now = state.clock()
    events = queries.events_last_24h(session, now=now, source_id=source.id)
    return queries.source_row(source, now=now, events_24h=events.get(source.id, 0))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- models -----------------------------------------------------------------------------------


class Me(BaseModel):
    username: str | None
    role: str
    via: str


class AccountOut(BaseModel):
    account_id: str
    name: str
    partition: str
    organization_id: str | None
    enabled: bool
    cadence_seconds: int | None


class SourceOut(BaseModel):
    id: int
    kind: Literal["cloudtrail", "eks"]
    source: str
    account_id: str
    account_name: str
    organization_id: str | None
    cluster: str | None
    bucket: str
    region: str
    prefix: str
    role: str | None = Field(description="The role config's name; null: the base credentials")
    role_display: str = Field(description="The role ARN, or how the base credentials sign in")
    enabled: bool
    health: str
    health_reason: str | None
    last_run_at: str | None
    last_success_at: str | None
    next_run_at: str | None
    newest_object_at: str | None
    lag_seconds: int | None
    events_24h: int


def _source_out(row: queries.SourceRow) -> SourceOut:
    return SourceOut(
        id=row.id,
        kind="eks" if row.kind == service.EKS else "cloudtrail",
        source=row.label,
        account_id=row.account_id,
        account_name=row.account_name,
        organization_id=row.organization_id,
        cluster=row.cluster,
        bucket=row.bucket,
        region=row.region,
        prefix=row.prefix,
        role=row.role_name,
        role_display=row.role_display,
        enabled=row.enabled,
        health=row.health,
        health_reason=row.health_reason,
        last_run_at=_iso(row.last_run_at),
        last_success_at=_iso(row.last_success_at),
        next_run_at=_iso(row.next_run_at),
        newest_object_at=_iso(row.newest_object_at),
        lag_seconds=int(row.lag.total_seconds()) if row.lag is not None else None,
        events_24h=row.events_24h,
    )


class RoleOut(BaseModel):
    name: str
    role_arn: str | None
    session_name: str
    partition: str
    authentication: str
    via_role_arn: str | None
    has_external_id: bool
    access_key_id: str | None = Field(description="Masked: ****plus the last four characters")
    has_secret: bool = Field(description="The secret itself is write-only and never returned")


def _role_out(role: RoleConfig) -> RoleOut:
    return RoleOut(
        name=role.name,
        role_arn=role.role_arn,
        session_name=role.session_name,
        partition=role.partition,
        authentication=role.authentication,
        via_role_arn=role.via_role_arn,
        has_external_id=bool(role.external_id),
        access_key_id=mask(role.access_key.access_key_id) if role.access_key else None,
        has_secret=role.access_key is not None,
    )


class NewRoleIn(BaseModel):
    """A role config to create. ``secret_access_key`` is accepted, stored encrypted, never
    returned."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=128)
    role_arn: str | None = Field(default=None, max_length=2048)
    session_name: str = Field(default=DEFAULT_SESSION_NAME, max_length=64)
    partition: str | None = Field(default=None, max_length=16)
    authentication: Literal["instance-profile", "access-keys"] = "instance-profile"
    access_key_id: str | None = Field(default=None, max_length=128)
    secret_access_key: SecretStr | None = Field(default=None, max_length=128)
    via_role_arn: str | None = Field(
        default=None, max_length=2048, description="A primary role assumed first"
    )
    external_id: SecretStr | None = Field(
        default=None, max_length=1224, description="Overrides the installation-wide one"
    )

    def to_input(self) -> NewRoleInput:
        return NewRoleInput(
            name=self.name,
            role_arn=self.role_arn,
            session_name=self.session_name,
            partition=self.partition,
            authentication=self.authentication,
            access_key_id=self.access_key_id,
            secret_access_key=(
                self.secret_access_key.get_secret_value() if self.secret_access_key else None
            ),
            via_role_arn=self.via_role_arn,
            external_id=self.external_id.get_secret_value() if self.external_id else None,
        )


class StorageIn(BaseModel):
    """A source's storage configuration. Omitted fields keep their value; ``role: null`` reads
    with the base credentials; ``new_role`` creates a role config and uses it."""

    model_config = ConfigDict(extra="forbid")

    bucket: str | None = Field(default=None, max_length=255, description="The resource name")
    region: str | None = Field(default=None, max_length=64)
    prefix: str | None = Field(default=None, max_length=1024, description="CloudTrail only")
    role: str | None = Field(default=None, max_length=128)
    new_role: NewRoleIn | None = None


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: str = Field(max_length=100, description="A detector id; * wildcards")
    principal: str | None = Field(default=None, max_length=2048)
    account: str | None = Field(default=None, max_length=12)
    until: str | None = Field(
        default=None, max_length=64, description="A duration from now (7d) or a time"
    )
    reason: str | None = Field(default=None, max_length=1000)


class SuppressionOut(BaseModel):
    id: int
    detector: str
    principal: str | None
    account_id: str | None
    until: str | None
    reason: str | None
    created_by: str | None
    created_at: str


# --- reads ------------------------------------------------------------------------------------


@router.get("/me", summary="Who the request authenticates as")
def me(principal: Reader) -> Me:
    return Me(username=principal.username, role=principal.role, via=principal.via)


@router.get("/accounts", summary="Accounts of the inventory")
def list_accounts(_: Reader, state: State) -> list[AccountOut]:
    with state.session() as session:
        return [
            AccountOut(
                account_id=a.account_id,
                name=a.name,
                partition=a.partition,
                organization_id=a.organization_id,
                enabled=a.enabled,
                cadence_seconds=a.cadence_seconds,
            )
            for a in service.list_accounts(session)
        ]


@router.get("/clusters", summary="EKS cluster sources")
def list_clusters(_: Reader, state: State) -> list[SourceOut]:
    with state.session() as session:
        rows = queries.source_rows(session, now=state.clock(), kind=service.EKS)
    return [_source_out(r) for r in rows]


@router.get("/sources", summary="Sources with storage, health, lag and events in 24 h")
def list_sources(
    _: Reader,
    state: State,
    kind: Annotated[Literal["cloudtrail", "eks"] | None, Query()] = None,
) -> list[SourceOut]:
    with state.session() as session:
        rows = queries.source_rows(session, now=state.clock(), kind=kind)
    return [_source_out(r) for r in rows]


SourceId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/sources/{source_id}", summary="One source", responses={404: {}})
def get_source(source_id: SourceId, _: Reader, state: State) -> SourceOut:
    with state.session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no source with id {source_id}")
        return _source_out(_row(session, state, source))


@router.get("/roles", summary="Role configs (access keys masked, secrets never)")
def list_roles(_: Reader, state: State) -> list[RoleOut]:
    with state.session() as session:
        return [_role_out(r) for r in service.list_roles(session)]


@router.get("/anomalies", summary="Anomalies, newest first")
def list_anomalies(
    _: Reader,
    state: State,
    *,
    severity: Annotated[str, Query(max_length=16, description="Minimum severity")] = "",
    account: Annotated[str, Query(max_length=12)] = "",
    cluster: Annotated[str, Query(max_length=100)] = "",
    detector: Annotated[str, Query(max_length=100, description="* wildcards")] = "",
    status_: Annotated[str, Query(alias="status", max_length=8)] = "",
    since: Annotated[str, Query(max_length=64, description="24h, 7d or a time")] = "",
    until: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[str, Query(max_length=4)] = "",
) -> list[dict[str, Any]]:
    raw = AnomalyFilterInput(
        severity=severity,
        account=account,
        cluster=cluster,
        detector=detector,
        status=status_,
        since=since,
        until=until,
        limit=limit,
    )
    try:
        flt = parse_anomaly_filter(raw, now=state.clock())
    except FormErrors as exc:
        raise _invalid(exc.errors) from None
    with state.session() as session:
        return [anomaly_record(a) for a in queries.find_anomalies(session, flt)]


AnomalyId = Annotated[str, Path(min_length=4, max_length=40, pattern=r"^[0-9a-zA-Z_-]+$")]


@router.get("/anomalies/{anomaly_id}", summary="One anomaly with its evidence", responses={404: {}})
def get_anomaly(anomaly_id: AnomalyId, _: Reader, state: State) -> dict[str, Any]:
    with state.session() as session:
        try:
            return anomaly_record(repo.get_anomaly(session, anomaly_id=anomaly_id))
        except service.NotFound as exc:
            raise _not_found(exc) from None


class RecordOut(BaseModel):
    anomaly_id: str
    index: int
    bucket: str
    key: str
    record_index: int
    event: dict[str, Any] = Field(description="The normalized event, read from S3 just now")


@router.get(
    "/anomalies/{anomaly_id}/evidence/{index}",
    summary="Fetch one evidence record from S3 (needs a user, even with --public-read)",
    responses={404: {}, 502: {"description": "S3 refused or the object changed"}},
)
def get_evidence_record(
    anomaly_id: AnomalyId,
    index: Annotated[int, Path(ge=0, le=1000)],
    principal: Reader,
    state: State,
) -> RecordOut:
    if not principal.authenticated:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "fetching records from S3 needs a user",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        anomaly, fetched, error = records.fetch_evidence(state, anomaly_id=anomaly_id, index=index)
    except service.NotFound as exc:
        raise _not_found(exc) from None
    if fetched is None:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, error)
    evidence = fetched.evidence
    return RecordOut(
        anomaly_id=anomaly.id,
        index=index,
        bucket=evidence.bucket,
        key=evidence.key,
        record_index=evidence.index,
        event=json.loads(fetched.json),
    )


@router.get("/incidents", summary="Incidents, newest first")
def list_incidents(
    _: Reader,
    state: State,
    *,
    severity: Annotated[str, Query(max_length=16, description="Minimum severity")] = "",
    since: Annotated[str, Query(max_length=64, description="24h, 7d or a time")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    errors: dict[str, str] = {}
    min_severity = start = None
    if severity:
        try:
            min_severity = Severity.parse(severity)
        except ValueError:
            errors["severity"] = "use info, low, medium, high or critical"
    if since:
        try:
            start = parse_time(since, "since", now=state.clock(), future=False)
        except v.InvalidValue as exc:
            errors["since"] = exc.rule
    if errors:
        raise _invalid(errors)
    with state.session() as session:
        found = repo.list_incidents(session, since=start, min_severity=min_severity, limit=limit)
        return [incident_record(i) for i in found]


@router.get(
    "/incidents/{incident_id}", summary="One incident and its anomalies", responses={404: {}}
)
def get_incident(incident_id: AnomalyId, _: Reader, state: State) -> dict[str, Any]:
    with state.session() as session:
        try:
            incident, anomalies = repo.get_incident(session, incident_id=incident_id)
        except service.NotFound as exc:
            raise _not_found(exc) from None
    record = incident_record(incident, {a.id: a for a in anomalies})
    return {**record, "anomalies": [anomaly_record(a) for a in anomalies]}


def _suppression_out(record: Any) -> SuppressionOut:
    return SuppressionOut(
        id=record.id,
        detector=record.detector,
        principal=record.principal,
        account_id=record.account_id,
        until=_iso(record.until),
        reason=record.reason,
        created_by=record.created_by,
        created_at=record.created_at.isoformat(),
    )


@router.get("/suppressions", summary="Suppression rules")
def list_suppressions(
    _: Reader, state: State, active: Annotated[bool, Query()] = False
) -> list[SuppressionOut]:
    with state.session() as session:
        records = repo.list_suppressions(session, now=state.clock() if active else None)
        return [_suppression_out(r) for r in records]


class OverviewOut(BaseModel):
    accounts: int
    sources: int
    events_24h: int
    open_anomalies: int
    open_incidents: int
    events_per_hour: list[dict[str, Any]]
    anomalies_per_day: list[dict[str, Any]]
    degraded_sources: list[SourceOut]


@router.get("/overview", summary="The overview page's numbers")
def get_overview(_: Reader, state: State) -> OverviewOut:
    with state.session() as session:
        data = queries.overview(session, now=state.clock())
    return OverviewOut(
        accounts=data.accounts,
        sources=data.sources,
        events_24h=data.events_24h,
        open_anomalies=data.open_anomalies,
        open_incidents=data.open_incidents,
        events_per_hour=[{"hour": h.hour.isoformat(), "events": h.events} for h in data.hours],
        anomalies_per_day=[
            {"day": d.day.isoformat(), "by_severity": d.by_severity} for d in data.days
        ],
        degraded_sources=[_source_out(r) for r in data.degraded],
    )


# --- writes -----------------------------------------------------------------------------------


@router.put(
    "/sources/{source_id}/storage",
    summary="Edit a source's storage configuration",
    responses=_WRITE_RESPONSES,
)
def edit_storage(source_id: SourceId, body: StorageIn, _: Writer, state: State) -> SourceOut:
    if body.role is not None and body.new_role is not None:
        raise _invalid({"role": "give either role or new_role, not both"})
    try:
        with state.session() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no source with id {source_id}")
            keep_role = "role" not in body.model_fields_set
            edit = StorageEdit(
                bucket=body.bucket if body.bucket is not None else source.bucket,
                region=body.region if body.region is not None else source.region,
                prefix=body.prefix
                if body.prefix is not None
                else (source.prefix if source.kind == service.CLOUDTRAIL else None),
                role=(source.role.name if source.role else None) if keep_role else body.role,
                new_role=body.new_role.to_input() if body.new_role else None,
            )
            apply_storage_edit(session, source=source, edit=edit, box=state.box, clock=state.clock)
            row = _row(session, state, source)
    except FormErrors as exc:
        raise _invalid(exc.errors) from None
    return _source_out(row)


@router.post(
    "/roles",
    summary="Create a role config (the secret is write-only)",
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_RESPONSES,
)
def create_role(body: NewRoleIn, _: Writer, state: State) -> RoleOut:
    new = body.to_input()
    keys = new.authentication == "access-keys"
    spec = RoleSpec(
        name=new.name,
        role_arn=new.role_arn or None,
        session_name=new.session_name,
        partition=new.partition or "aws",
        authentication=new.authentication,
        access_key_id=new.access_key_id if keys else None,
        secret_access_key=new.secret_access_key if keys else None,
    )
    if not keys and (new.access_key_id or new.secret_access_key):
        raise _invalid(
            {"authentication": "access keys are given but authentication is not access-keys"}
        )
    if keys and new.secret_access_key is None:
        raise _invalid({"secret_access_key": "a new access key needs its secret access key"})
    try:
        with state.session() as session:
            if service.role_exists(session, name=spec.name):
                raise _invalid({"name": "a role config with this name exists"})
            role = service.upsert_role(
                session, spec.validate("role"), box=state.box, clock=state.clock
            )
            return _role_out(role)
    except v.InvalidValue as exc:
        field = exc.field.removeprefix("role.")
        raise _invalid({field: exc.rule}) from None


@router.post(
    "/sources/{source_id}/doctor",
    summary="Run the doctor for a source: its steps, each ok/warn/fail/skip with the fix",
    responses=_WRITE_RESPONSES,
)
def doctor(source_id: SourceId, _: Writer, state: State) -> dict[str, Any]:
    with state.session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no source with id {source_id}")
        try:
            info = source_info_from_row(
                source, secret_box=state.box, default_external_id=state.settings.external_id
            )
        except (IdentityConfigError, SecretKeyError) as exc:
            raise _invalid({"role": str(exc)}) from None
    report = run_doctor(info, session_factory=state.aws(), clock=state.clock)
    return report_to_json(report)


@router.post(
    "/anomalies/{anomaly_id}/ack",
    summary="Acknowledge an anomaly",
    responses=_WRITE_RESPONSES,
)
def ack(anomaly_id: AnomalyId, principal: Writer, state: State) -> dict[str, Any]:
    with state.session() as session:
        try:
            anomaly = repo.ack_anomaly(
                session, anomaly_id=anomaly_id, clock=state.clock, by=principal.username
            )
        except service.NotFound as exc:
            raise _not_found(exc) from None
        return anomaly_record(anomaly)


@router.post(
    "/suppressions",
    summary="Add a suppression rule",
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_RESPONSES,
)
def add_suppression(body: SuppressionIn, principal: Writer, state: State) -> SuppressionOut:
    try:
        rule = parse_suppression(
            detector=body.detector,
            principal=body.principal,
            account=body.account,
            until=body.until,
            reason=body.reason,
            now=state.clock(),
        )
    except FormErrors as exc:
        raise _invalid(exc.errors) from None
    with state.session() as session:
        record = repo.add_suppression(
            session,
            detector=rule.detector,
            principal=rule.principal,
            account=rule.account,
            until=rule.until,
            reason=rule.reason,
            created_by=principal.username,
            clock=state.clock,
        )
        return _suppression_out(record)
