"""Anomalies, incidents and suppressions in the database, on SQLite and PostgreSQL alike.

Anomalies are upserted by dedup key: ``INSERT … ON CONFLICT (dedup_key) DO NOTHING``, then
the rows that already existed are locked and merged (count, window, evidence) the same way
the engine merges in memory, so storing the same batch's anomalies twice changes nothing.

Every function takes the session and leaves committing to the caller, except
``score_and_store``, which owns the order that makes a redo safe: database first, detector
state second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Select, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.db.anomaly_models import (
    AnomalyRecord,
    IncidentAnomaly,
    IncidentRecord,
    SuppressionRecord,
)
from harvester.db.models import Account, Source
from harvester.detect.engine import Scorer, merge_anomaly
from harvester.detect.incidents import build_incidents
from harvester.detect.model import Anomaly, Evidence, Incident, Severity, SuppressionRule
from harvester.detect.rules import RuleConfig
from harvester.events import Event
from harvester.inventory.service import NotFound

__all__ = [
    "StoreSummary",
    "ack_anomaly",
    "ack_incident",
    "active_suppressions",
    "add_suppression",
    "anomaly_from_record",
    "correlate_incidents",
    "get_anomaly",
    "get_incident",
    "incident_from_record",
    "inventory_rule_config",
    "list_anomalies",
    "list_incidents",
    "list_suppressions",
    "remove_suppression",
    "save_anomalies",
    "score_and_store",
]

_CHUNK = 400


# --- conversions ------------------------------------------------------------------------------


def _anomaly_row(anomaly: Anomaly, now: datetime) -> dict[str, Any]:
    return {
        "id": anomaly.id,
        "dedup_key": anomaly.dedup_key,
        "detector": anomaly.detector,
        "detector_version": anomaly.detector_version,
        "title": anomaly.title[:300],
        "severity": anomaly.severity.value,
        "severity_rank": anomaly.severity.rank,
        "score": anomaly.score,
        "account_id": anomaly.account_id,
        "region": anomaly.region,
        "cluster": anomaly.cluster,
        "principal": anomaly.principal[:2048] if anomaly.principal else None,
        "identity": anomaly.identity[:1024] if anomaly.identity else None,
        "source_ip": anomaly.source_ip[:64] if anomaly.source_ip else None,
        "first_seen": anomaly.first_seen,
        "last_seen": anomaly.last_seen,
        "count": anomaly.count,
        "explanation": anomaly.explanation,
        "evidence": msgspec.to_builtins(anomaly.evidence),
        "mitre_tactics": list(anomaly.mitre_tactics),
        "mitre_techniques": list(anomaly.mitre_techniques),
        "status": anomaly.status,
        "created_at": now,
        "updated_at": now,
    }


def anomaly_from_record(record: AnomalyRecord) -> Anomaly:
    return Anomaly(
        id=record.id,
        dedup_key=record.dedup_key,
        detector=record.detector,
        detector_version=record.detector_version,
        title=record.title,
        severity=Severity(record.severity),
        score=record.score,
        account_id=record.account_id,
        region=record.region,
        cluster=record.cluster,
        principal=record.principal,
        identity=record.identity,
        source_ip=record.source_ip,
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        count=record.count,
        explanation=record.explanation,
        evidence=msgspec.convert(record.evidence or [], tuple[Evidence, ...], strict=False),
        mitre_tactics=tuple(record.mitre_tactics or ()),
        mitre_techniques=tuple(record.mitre_techniques or ()),
        status=record.status,
    )


def incident_from_record(record: IncidentRecord) -> Incident:
    return Incident(
        id=record.id,
        identity=record.identity,
        title=record.title,
        severity=Severity(record.severity),
        score=record.score,
        account_ids=tuple(record.account_ids or ()),
        clusters=tuple(record.clusters or ()),
        first_seen=record.first_seen,
        last_seen=record.last_seen,
        tactics=tuple(record.tactics or ()),
        anomaly_ids=tuple(sorted(link.anomaly_id for link in record.links)),
        explanation=record.explanation,
        status=record.status,
    )


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no upsert for database dialect {dialect}")


# --- anomalies --------------------------------------------------------------------------------


def save_anomalies(
    session: Session, anomalies: Sequence[Anomaly], *, clock: Clock, evidence_cap: int = 20
) -> list[Anomaly]:
    """Upsert anomalies by dedup key; returns them as stored (merged with earlier sightings)."""
    merged: dict[str, Anomaly] = {}
    for anomaly in anomalies:
        old = merged.get(anomaly.dedup_key)
        merged[anomaly.dedup_key] = (
            anomaly if old is None else merge_anomaly(old, anomaly, cap=evidence_cap)
        )
    if not merged:
        return []
    now = clock()
    insert = _insert(session)
    stored: dict[str, Anomaly] = {}
    items = list(merged.values())
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        statement = (
            insert(AnomalyRecord)
            .values([_anomaly_row(a, now) for a in chunk])
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(AnomalyRecord.dedup_key)
        )
        inserted = set(session.scalars(statement))
        for anomaly in chunk:
            if anomaly.dedup_key in inserted:
                stored[anomaly.dedup_key] = anomaly
        existing = [a.dedup_key for a in chunk if a.dedup_key not in inserted]
        if not existing:
            continue
        records = session.scalars(
            select(AnomalyRecord)
            .where(AnomalyRecord.dedup_key.in_(existing))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for record in records:
            old = anomaly_from_record(record)
            new = merge_anomaly(old, merged[record.dedup_key], cap=evidence_cap)
            stored[record.dedup_key] = new
            if new == old:
                continue
            record.count = new.count
            record.first_seen = new.first_seen
            record.last_seen = new.last_seen
            record.evidence = msgspec.to_builtins(new.evidence)
            record.severity = new.severity.value
            record.severity_rank = new.severity.rank
            record.score = new.score
            record.title = new.title[:300]
            record.explanation = new.explanation
            record.updated_at = now
    session.flush()
    return [stored[a.dedup_key] for a in items if a.dedup_key in stored]


def _anomaly_query(
    *,
    since: datetime | None,
    min_severity: Severity | None,
    account: str | None,
    detector: str | None,
    status: str | None,
) -> Select[AnomalyRecord]:
    query = select(AnomalyRecord)
    if since is not None:
        query = query.where(AnomalyRecord.last_seen >= since)
    if min_severity is not None:
        query = query.where(AnomalyRecord.severity_rank >= min_severity.rank)
    if account:
        query = query.where(AnomalyRecord.account_id == account)
    if detector:
        if "*" in detector:
            query = query.where(AnomalyRecord.detector.like(detector.replace("*", "%")))
        else:
            query = query.where(AnomalyRecord.detector == detector)
    if status:
        query = query.where(AnomalyRecord.status == status)
    return query


def list_anomalies(
    session: Session,
    *,
    since: datetime | None = None,
    min_severity: Severity | None = None,
    account: str | None = None,
    detector: str | None = None,
    status: str | None = None,
    limit: int = 500,
) -> list[Anomaly]:
    """Newest first."""
    query = _anomaly_query(
        since=since, min_severity=min_severity, account=account, detector=detector, status=status
    )
    query = query.order_by(AnomalyRecord.last_seen.desc(), AnomalyRecord.id).limit(limit)
    return [anomaly_from_record(r) for r in session.scalars(query)]


def _by_id(session: Session, model: type[Any], prefix: str, what: str) -> Any:
    record = session.get(model, prefix)
    if record is not None:
        return record
    # Ids are long; like git, accept any unambiguous beginning.
    found = session.scalars(select(model).where(model.id.startswith(prefix)).limit(2)).all()
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(f"no {what} with id {prefix!r}")
    raise NotFound(f"{prefix!r} matches more than one {what}: give more of the id")


def get_anomaly(session: Session, *, anomaly_id: str) -> Anomaly:
    record: AnomalyRecord = _by_id(session, AnomalyRecord, anomaly_id, "anomaly")
    return anomaly_from_record(record)


def ack_anomaly(
    session: Session, *, anomaly_id: str, clock: Clock, by: str | None = None
) -> Anomaly:
    record: AnomalyRecord = _by_id(session, AnomalyRecord, anomaly_id, "anomaly")
    now = clock()
    record.status = "acked"
    record.acked_at = now
    record.acked_by = by
    record.updated_at = now
    session.flush()
    return anomaly_from_record(record)


# --- incidents --------------------------------------------------------------------------------


def correlate_incidents(
    session: Session,
    anomalies: Sequence[Anomaly],
    *,
    clock: Clock,
    window: timedelta = timedelta(hours=1),
) -> list[Incident]:
    """Look for attack chains around newly stored anomalies (with those already stored)."""
    identities = sorted({a.identity for a in anomalies if a.identity})
    if not identities:
        return []
    low = min(a.first_seen for a in anomalies) - window
    high = max(a.last_seen for a in anomalies) + window
    records = session.scalars(
        select(AnomalyRecord).where(
            AnomalyRecord.identity.in_(identities),
            AnomalyRecord.last_seen >= low,
            AnomalyRecord.first_seen <= high,
        )
    ).all()
    incidents = build_incidents([anomaly_from_record(r) for r in records], window=window)
    return [_save_incident(session, i, clock=clock, window=window) for i in incidents]


def _save_incident(
    session: Session, incident: Incident, *, clock: Clock, window: timedelta
) -> Incident:
    now = clock()
    # A chain seen again with more (or earlier) anomalies is the same incident, not a new one.
    record = session.scalars(
        select(IncidentRecord)
        .where(
            IncidentRecord.identity == incident.identity,
            IncidentRecord.last_seen >= incident.first_seen - window,
            IncidentRecord.first_seen <= incident.last_seen + window,
        )
        .order_by(IncidentRecord.first_seen)
        .limit(1)
    ).first()
    if record is None:
        record = session.get(IncidentRecord, incident.id)
    if record is None:
        record = IncidentRecord(
            id=incident.id,
            identity=incident.identity,
            status="open",
            created_at=now,
            first_seen=incident.first_seen,
            last_seen=incident.last_seen,
        )
        session.add(record)
        better = True
    else:
        better = incident.score >= record.score
    if better:
        record.title = incident.title[:500]
        record.severity = incident.severity.value
        record.severity_rank = incident.severity.rank
        record.score = incident.score
        record.explanation = incident.explanation
        record.tactics = list(incident.tactics)
    record.account_ids = sorted({*(record.account_ids or ()), *incident.account_ids})
    record.clusters = sorted({*(record.clusters or ()), *incident.clusters})
    record.first_seen = min(record.first_seen, incident.first_seen)
    record.last_seen = max(record.last_seen, incident.last_seen)
    record.updated_at = now
    linked = {link.anomaly_id for link in record.links}
    for anomaly_id in incident.anomaly_ids:
        if anomaly_id not in linked:
            record.links.append(IncidentAnomaly(anomaly_id=anomaly_id))
    session.flush()
    return incident_from_record(record)


def list_incidents(
    session: Session,
    *,
    since: datetime | None = None,
    min_severity: Severity | None = None,
    limit: int = 200,
) -> list[Incident]:
    query = select(IncidentRecord)
    if since is not None:
        query = query.where(IncidentRecord.last_seen >= since)
    if min_severity is not None:
        query = query.where(IncidentRecord.severity_rank >= min_severity.rank)
    query = query.order_by(IncidentRecord.last_seen.desc(), IncidentRecord.id).limit(limit)
    return [incident_from_record(r) for r in session.scalars(query)]


def get_incident(session: Session, *, incident_id: str) -> tuple[Incident, list[Anomaly]]:
    record: IncidentRecord = _by_id(session, IncidentRecord, incident_id, "incident")
    ids = [link.anomaly_id for link in record.links]
    anomalies = [
        anomaly_from_record(r)
        for r in session.scalars(
            select(AnomalyRecord)
            .where(AnomalyRecord.id.in_(ids))
            .order_by(AnomalyRecord.first_seen)
        )
    ]
    return incident_from_record(record), anomalies


def ack_incident(session: Session, *, incident_id: str, clock: Clock) -> Incident:
    record: IncidentRecord = _by_id(session, IncidentRecord, incident_id, "incident")
    record.status = "acked"
    record.acked_at = clock()
    record.updated_at = record.acked_at
    session.flush()
    return incident_from_record(record)


# --- suppressions -----------------------------------------------------------------------------


def add_suppression(
    session: Session,
    *,
    detector: str,
    clock: Clock,
    principal: str | None = None,
    account: str | None = None,
    until: datetime | None = None,
    reason: str | None = None,
    created_by: str | None = None,
) -> SuppressionRecord:
    if not detector.strip():
        raise ValueError("a suppression needs a detector id (or * for all detectors)")
    if until is not None and until.tzinfo is None:
        raise ValueError("the end of a suppression must be a timezone-aware time")
    record = SuppressionRecord(
        detector=detector.strip(),
        principal=principal or None,
        account_id=account or None,
        until=until,
        reason=reason,
        created_by=created_by,
        created_at=clock(),
    )
    session.add(record)
    session.flush()
    return record


def list_suppressions(session: Session, *, now: datetime | None = None) -> list[SuppressionRecord]:
    """All rules, or only those still in force at ``now``."""
    query = select(SuppressionRecord).order_by(SuppressionRecord.id)
    if now is not None:
        query = query.where(or_(SuppressionRecord.until.is_(None), SuppressionRecord.until > now))
    return list(session.scalars(query))


def remove_suppression(session: Session, *, suppression_id: int) -> None:
    result = session.execute(
        delete(SuppressionRecord).where(SuppressionRecord.id == suppression_id)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no suppression with id {suppression_id}")


def active_suppressions(session: Session, *, now: datetime) -> list[SuppressionRule]:
    return [
        SuppressionRule(
            detector=r.detector,
            principal=r.principal,
            account=r.account_id,
            until=r.until,
            id=r.id,
        )
        for r in list_suppressions(session, now=now)
    ]


def inventory_rule_config(session: Session, base: RuleConfig | None = None) -> RuleConfig:
    """What the rules should know from the inventory: our accounts and our trail buckets.

    Sharing a snapshot with one of the organization's own accounts is not exfiltration, and a
    short expiry on a bucket that receives CloudTrail logs is worse than on any other bucket.
    """
    base = base or RuleConfig()
    accounts = frozenset(session.scalars(select(Account.account_id)))
    buckets = frozenset(session.scalars(select(Source.bucket).where(Source.kind == "cloudtrail")))
    return RuleConfig(
        known_accounts=base.known_accounts | accounts,
        trail_buckets=base.trail_buckets | buckets,
        short_lifecycle_days=base.short_lifecycle_days,
        admin_ports=base.admin_ports,
    )


# --- the whole step ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSummary:
    events: int
    duplicates: int
    anomalies: int
    suppressed: int
    incidents: int
    errors: int


def score_and_store(
    session: Session,
    scorer: Scorer,
    events: Sequence[Event],
    *,
    incident_window: timedelta = timedelta(hours=1),
) -> StoreSummary:
    """Score a batch, store its anomalies and incidents, commit, then commit detector state.

    The order is what makes a redelivered or redone batch safe: if anything fails before the
    database commit, the events are handed back (``abort``) for a retry; if the process dies
    between the two commits, the upsert absorbs the repeat.
    """
    clock = scorer.clock
    suppressions = active_suppressions(session, now=clock())
    result = scorer.score(events, suppressions=suppressions)
    try:
        stored = save_anomalies(
            session, result.anomalies, clock=clock, evidence_cap=scorer.config.evidence_cap
        )
        incidents = correlate_incidents(session, stored, clock=clock, window=incident_window)
        session.commit()
    except BaseException:
        session.rollback()
        result.abort()
        raise
    result.commit()
    return StoreSummary(
        events=result.events,
        duplicates=result.duplicates,
        anomalies=len(stored),
        suppressed=len(result.suppressed),
        incidents=len(incidents),
        errors=result.errors,
    )
