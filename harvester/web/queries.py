"""What the console shows, read from the database: source rows, counts, chart series, findings.

Plain dataclasses out, so templates and the JSON API render the same facts. Time buckets are
computed in SQL (UTC hours and days) on both backends, so a busy ledger is not loaded row by
row to draw a chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from harvester.crypto import mask
from harvester.db.anomaly_models import AnomalyRecord, IncidentAnomaly, IncidentRecord
from harvester.db.models import ProcessedObject, Source
from harvester.detect.model import Anomaly, Severity
from harvester.detect.repository import anomaly_from_record, detector_matches
from harvester.inventory import service

__all__ = [
    "AnomalyFilter",
    "DayCounts",
    "FilterOptions",
    "HourCount",
    "OverviewData",
    "SourceRow",
    "anomalies_per_day",
    "events_last_24h",
    "events_per_hour",
    "filter_options",
    "find_anomalies",
    "incidents_of",
    "overview",
    "source_row",
    "source_rows",
]

HEALTHY = frozenset({"ok", "new"})
# A corrupt object's events before the fault were scored too, so they count as harvested.
COUNTED = ("done", "corrupt")


@dataclass(frozen=True)
class SourceRow:
    id: int
    kind: str
    label: str
    account_id: str
    account_name: str
    partition: str
    organization_id: str | None
    cluster: str | None
    bucket: str
    region: str
    prefix: str
    role_name: str | None
    # The role ARN, or how the base credentials authenticate when no role is assumed.
    role_display: str
    enabled: bool
    health: str
    health_reason: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    next_run_at: datetime | None
    newest_object_at: datetime | None
    lag: timedelta | None
    events_24h: int

    @property
    def degraded(self) -> bool:
        return self.health not in HEALTHY


def role_display(source: Source) -> str:
    role = source.role
    if role is None:
        return "instance profile"
    if role.role_arn:
        return role.role_arn
    if role.authentication == "access-keys" and role.access_key is not None:
        return f"access keys {mask(role.access_key.access_key_id)}"
    return "instance profile"


def source_row(source: Source, *, now: datetime, events_24h: int = 0) -> SourceRow:
    return SourceRow(
        id=source.id,
        kind=source.kind,
        label=service.source_label(source),
        account_id=source.account.account_id,
        account_name=source.account.name,
        partition=source.account.partition,
        organization_id=source.account.organization_id,
        cluster=source.cluster_name or None,
        bucket=source.bucket,
        region=source.region,
        prefix=source.prefix,
        role_name=source.role.name if source.role else None,
        role_display=role_display(source),
        enabled=source.enabled,
        health=source.health,
        health_reason=source.health_reason,
        last_run_at=source.last_run_at,
        last_success_at=source.last_success_at,
        next_run_at=source.next_run_at,
        newest_object_at=source.newest_object_at,
        lag=max(now - source.newest_object_at, timedelta(0)) if source.newest_object_at else None,
        events_24h=events_24h,
    )


def events_last_24h(
    session: Session, *, now: datetime, source_id: int | None = None
) -> dict[int, int]:
    """Events per source in objects delivered in the last 24 hours (from the ledger)."""
    query = (
        select(ProcessedObject.source_id, func.coalesce(func.sum(ProcessedObject.events), 0))
        .where(ProcessedObject.object_time >= now - timedelta(hours=24))
        .where(ProcessedObject.status.in_(COUNTED))
        .group_by(ProcessedObject.source_id)
    )
    if source_id is not None:
        query = query.where(ProcessedObject.source_id == source_id)
    return {int(source_id): int(total) for source_id, total in session.execute(query)}


def source_rows(session: Session, *, now: datetime, kind: str | None = None) -> list[SourceRow]:
    events = events_last_24h(session, now=now)
    return [
        source_row(s, now=now, events_24h=events.get(s.id, 0))
        for s in service.list_sources(session, kind=kind)
    ]


# --- time series ------------------------------------------------------------------------------


def _bucket(session: Session, column: Any, unit: str) -> ColumnElement[Any]:
    """The UTC hour or day a timestamp falls in, as the backend can compute it."""
    if session.get_bind().dialect.name == "postgresql":
        # AT TIME ZONE 'UTC' first: date_trunc on timestamptz truncates in the session's zone.
        return func.date_trunc(unit, func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00" if unit == "hour" else "%Y-%m-%d 00:00:00", column)


def _as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    events: int


def events_per_hour(session: Session, *, now: datetime, hours: int = 24) -> list[HourCount]:
    """Events per UTC hour of object delivery over the last ``hours``, oldest first, gaps as 0."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    bucket = _bucket(session, ProcessedObject.object_time, "hour")
    query = (
        select(bucket, func.coalesce(func.sum(ProcessedObject.events), 0))
        .where(ProcessedObject.object_time >= start, ProcessedObject.status.in_(COUNTED))
        .group_by(bucket)
    )
    found = {_as_utc(hour): int(total) for hour, total in session.execute(query)}
    return [
        HourCount(start + timedelta(hours=i), found.get(start + timedelta(hours=i), 0))
        for i in range(hours)
    ]


@dataclass(frozen=True)
class DayCounts:
    day: date
    by_severity: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())


def anomalies_per_day(session: Session, *, now: datetime, days: int = 14) -> list[DayCounts]:
    """Anomalies first seen per UTC day and severity over the last ``days``, oldest first."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days - 1)
    bucket = _bucket(session, AnomalyRecord.first_seen, "day")
    query = (
        select(bucket, AnomalyRecord.severity, func.count())
        .where(AnomalyRecord.first_seen >= start)
        .group_by(bucket, AnomalyRecord.severity)
    )
    found: dict[date, dict[str, int]] = {}
    for day, severity, count in session.execute(query):
        found.setdefault(_as_utc(day).date(), {})[str(severity)] = int(count)
    series = []
    for i in range(days):
        day = (start + timedelta(days=i)).date()
        counts = found.get(day, {})
        series.append(DayCounts(day, {s.value: counts.get(s.value, 0) for s in Severity}))
    return series


@dataclass(frozen=True)
class OverviewData:
    accounts: int
    sources: int
    events_24h: int
    open_anomalies: int
    open_incidents: int
    hours: list[HourCount]
    days: list[DayCounts]
    degraded: list[SourceRow]


def overview(session: Session, *, now: datetime) -> OverviewData:
    counts = service.counts(session)
    rows = source_rows(session, now=now)
    open_anomalies = session.scalar(
        select(func.count()).select_from(AnomalyRecord).where(AnomalyRecord.status == "open")
    )
    open_incidents = session.scalar(
        select(func.count()).select_from(IncidentRecord).where(IncidentRecord.status == "open")
    )
    return OverviewData(
        accounts=counts.accounts,
        sources=counts.sources,
        events_24h=sum(r.events_24h for r in rows),
        open_anomalies=open_anomalies or 0,
        open_incidents=open_incidents or 0,
        hours=events_per_hour(session, now=now),
        days=anomalies_per_day(session, now=now),
        degraded=[r for r in rows if r.degraded],
    )


# --- findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnomalyFilter:
    """The anomaly list's filters, already validated (see :mod:`harvester.web.forms`)."""

    min_severity: Severity | None = None
    account: str | None = None
    cluster: str | None = None
    detector: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


def find_anomalies(session: Session, flt: AnomalyFilter) -> list[Anomaly]:
    """Anomalies matching ``flt``, newest first (by last sighting)."""
    query = select(AnomalyRecord)
    if flt.min_severity is not None:
        query = query.where(AnomalyRecord.severity_rank >= flt.min_severity.rank)
    if flt.account:
        query = query.where(AnomalyRecord.account_id == flt.account)
    if flt.cluster:
        query = query.where(AnomalyRecord.cluster == flt.cluster)
    if flt.detector:
        if "*" in flt.detector:
            query = query.where(detector_matches(flt.detector))
        else:
            query = query.where(AnomalyRecord.detector == flt.detector)
    if flt.status:
        query = query.where(AnomalyRecord.status == flt.status)
    if flt.since is not None:
        query = query.where(AnomalyRecord.last_seen >= flt.since)
    if flt.until is not None:
        query = query.where(AnomalyRecord.first_seen <= flt.until)
    query = query.order_by(AnomalyRecord.last_seen.desc(), AnomalyRecord.id).limit(flt.limit)
    return [anomaly_from_record(r) for r in session.scalars(query)]


def incidents_of(session: Session, *, anomaly_id: str) -> list[tuple[str, str]]:
    """(id, title) of the incidents an anomaly is part of."""
    query = (
        select(IncidentRecord.id, IncidentRecord.title)
        .join(IncidentAnomaly, IncidentAnomaly.incident_id == IncidentRecord.id)
        .where(IncidentAnomaly.anomaly_id == anomaly_id)
        .order_by(IncidentRecord.first_seen)
    )
    return [(str(i), str(t)) for i, t in session.execute(query)]


@dataclass(frozen=True)
class FilterOptions:
    accounts: Sequence[str]
    clusters: Sequence[str]
    detectors: Sequence[str]


def filter_options(session: Session) -> FilterOptions:
    """The values the filter menus offer: what anomalies and the inventory actually hold."""

    def distinct(column: Any) -> list[str]:
        return sorted(
            str(v) for v in session.scalars(select(column).distinct()) if v is not None and v != ""
        )

    accounts = set(distinct(AnomalyRecord.account_id)) | {
        a.account_id for a in service.list_accounts(session)
    }
    clusters = set(distinct(AnomalyRecord.cluster)) | set(distinct(Source.cluster_name))
    return FilterOptions(
        accounts=sorted(accounts),
        clusters=sorted(clusters),
        detectors=distinct(AnomalyRecord.detector),
    )
