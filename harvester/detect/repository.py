"""Anomalies, incidents and suppressions in the database, on SQLite and PostgreSQL alike.

Anomalies are upserted by dedup key: the rows that already exist are locked and merged
(count, window, evidence) the same way the engine merges in memory, the others inserted with
``INSERT … ON CONFLICT (dedup_key) DO NOTHING``, so storing the same batch's anomalies twice
changes nothing. Everything is set-based: a batch costs at most three statements for its
anomalies (lock and read the existing, one executemany insert, one executemany update) and
five for its incidents, whatever their number. Rows are written with Core statements, so
ORM objects of the rows touched that the session already holds are expired.

Incident correlation can run per batch (``score_and_store(..., correlate=True)``) or apart
from it: ``score_and_store(..., correlate=False)`` returns the identities it touched and
``correlate_pending`` correlates many batches' identities in one pass.

Every function takes the session and leaves committing to the caller, except
``score_and_store``, which owns the order that makes a redo safe: database first, detector
state second.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any, cast

import msgspec
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
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
from harvester.detect.state import ANONYMOUS
from harvester.events import Event
from harvester.inventory.service import NotFound
from harvester.notify import outbox

__all__ = [
    "StoreSummary",
    "ack_anomaly",
    "ack_incident",
    "active_suppressions",
    "add_suppression",
    "anomaly_from_record",
    "correlate_incidents",
    "correlate_pending",
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

_ANOMALIES = cast(Table, AnomalyRecord.__table__)
_INCIDENTS = cast(Table, IncidentRecord.__table__)
_LINKS = cast(Table, IncidentAnomaly.__table__)
# Keys per IN list: far below the bound-parameter limit of every backend.
_CHUNK = 500


# --- conversions ------------------------------------------------------------------------------


def _anomaly_row(anomaly: Anomaly, now: datetime) -> dict[str, Any]:
    return {
        "id": anomaly.id,
        "dedup_key": anomaly.dedup_key,
        "detector": anomaly.detector,
        "detector_version": anomaly.detector_version,
        "severity": anomaly.severity.value,
        "severity_rank": anomaly.severity.rank,
        "score": anomaly.score,
        "account_id": anomaly.account_id,
        "region": anomaly.region,
        "cluster": anomaly.cluster,
        **_clipped(anomaly),
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
    return _anomaly(record)


def _anomaly(record: Any) -> Anomaly:
    """From an ORM record or a row of the same columns."""
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


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _expire(session: Session, model: type[Any], ids: Iterable[str]) -> None:
    """Forget what the session holds of rows written behind the ORM's back."""
    if not len(session.identity_map):
        return
    for row_id in ids:
        record = session.identity_map.get(session.identity_key(model, row_id))
        if record is not None:
            session.expire(record)


_STORED = [c for c in _ANOMALIES.c if c.name not in ("acked_at", "acked_by", "created_at")]


def _clipped(anomaly: Anomaly) -> dict[str, str | None]:
    """The text columns with a length, as stored."""
    return {
        "title": anomaly.title[:300],
        "principal": anomaly.principal[:2048] if anomaly.principal else None,
        "identity": anomaly.identity[:1024] if anomaly.identity else None,
        "source_ip": anomaly.source_ip[:64] if anomaly.source_ip else None,
    }


def _as_stored(anomaly: Anomaly) -> Anomaly:
    """What reading ``anomaly`` back from its row gives."""
    clipped = _clipped(anomaly)
    if all(getattr(anomaly, name) == value for name, value in clipped.items()):
        return anomaly
    return msgspec.structs.replace(anomaly, **clipped)


def save_anomalies(
    session: Session,
    anomalies: Sequence[Anomaly],
    *,
    clock: Clock,
    evidence_cap: int = 20,
    inserted: set[str] | None = None,
    escalated: set[str] | None = None,
) -> list[Anomaly]:
    """Upsert anomalies by dedup key; returns them as stored (merged with earlier sightings).

    Three statements at most, however many anomalies: lock and read those already stored,
    insert the others (one executemany, pipelined by psycopg), update the merged ones (one
    executemany). Should another transaction store one of the new ones first, it is read and
    merged like those found at the start. ``inserted``, when given, receives the dedup keys
    this call stored for the first time (the new anomalies, not repeats merged into one);
    ``escalated`` those whose stored severity this call raised (for notifications).
    """
    inserted = set() if inserted is None else inserted
    escalated = set() if escalated is None else escalated
    merged: dict[str, Anomaly] = {}
    for anomaly in anomalies:
        old = merged.get(anomaly.dedup_key)
        merged[anomaly.dedup_key] = (
            anomaly if old is None else merge_anomaly(old, anomaly, cap=evidence_cap)
        )
    if not merged:
        return []
    # Core statements do not flush the session as ORM ones do: pending ORM changes first.
    session.flush()
    now = clock()
    stored: dict[str, Anomaly] = {}
    updates: list[dict[str, Any]] = []

    def merge(rows: Iterable[Any], *, ours: bool) -> None:
        for row in rows:
            old = _anomaly(row)
            mine = merged[row.dedup_key]
            if ours and old == _as_stored(mine):
                # Inserted by this call (or the very same anomaly, by a concurrent redo).
                stored[row.dedup_key] = mine
                inserted.add(row.dedup_key)
                continue
            new = merge_anomaly(old, mine, cap=evidence_cap)
            stored[row.dedup_key] = new
            if new.severity.rank > old.severity.rank:
                escalated.add(row.dedup_key)
            if new != old:
                updates.append(_merged_row(new, now))

    def locked(keys: Sequence[str]) -> Iterable[Any]:
        for part in _chunks(keys):
            # Locked until the commit: a concurrent batch merges into what this one wrote.
            yield from session.execute(
                select(*_STORED).where(_ANOMALIES.c.dedup_key.in_(part)).with_for_update()
            )

    merge(locked(list(merged)), ours=False)
    # In the engine's order, as before: rows lie on disk in the order they are inserted, and
    # correlation reads them back in that order (anomalies of the same second keep it).
    fresh = [key for key in merged if key not in stored]
    if fresh:
        # No RETURNING: psycopg pipelines a plain executemany, where RETURNING would make
        # SQLAlchemy build one long statement that psycopg parses anew for every batch.
        result = session.execute(
            _insert(session)(_ANOMALIES)
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            # SQLAlchemy reports an INSERT's rowcount only when asked to.
            .execution_options(preserve_rowcount=True),
            [_anomaly_row(merged[key], now) for key in fresh],
        )
        if getattr(result, "rowcount", -1) == len(fresh):
            stored.update((key, merged[key]) for key in fresh)
            inserted.update(fresh)
        else:
            merge(locked(fresh), ours=True)
    if updates:
        # By primary key, as the ORM's flush orders its updates: rows move on disk as before.
        updates.sort(key=lambda row: str(row["b_id"]))
        session.execute(update(_ANOMALIES).where(_ANOMALIES.c.id == bindparam("b_id")), updates)
        _expire(session, AnomalyRecord, (row["b_id"] for row in updates))
    saved = [stored[key] for key in merged if key in stored]
    # In the caller's transaction: a finding and its notifications commit together (an outbox).
    outbox.notify_anomalies(session, saved, inserted=inserted, escalated=escalated, clock=clock)
    return saved


def _merged_row(anomaly: Anomaly, now: datetime) -> dict[str, Any]:
    """The columns a merge changes, for the executemany UPDATE keyed by ``b_id``."""
    return {
        "b_id": anomaly.id,
        "count": anomaly.count,
        "first_seen": anomaly.first_seen,
        "last_seen": anomaly.last_seen,
        "evidence": msgspec.to_builtins(anomaly.evidence),
        "severity": anomaly.severity.value,
        "severity_rank": anomaly.severity.rank,
        "score": anomaly.score,
        "title": _clipped(anomaly)["title"],
        "explanation": anomaly.explanation,
        "updated_at": now,
    }


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
            query = query.where(detector_matches(detector))
        else:
            query = query.where(AnomalyRecord.detector == detector)
    if status:
        query = query.where(AnomalyRecord.status == status)
    return query


def detector_matches(pattern: str) -> ColumnElement[bool]:
    """A detector filter where ``*`` is the only wildcard (``_`` and ``%`` mean themselves)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return AnomalyRecord.detector.like(escaped.replace("*", "%"), escape="\\")


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
    # autoescape: an id never holds _ or %, but a typed prefix might, and LIKE reads them as
    # wildcards ("a_" would match "ab...").
    query = select(model).where(model.id.startswith(prefix, autoescape=True)).limit(2)
    found = session.scalars(query).all()
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
    anomaly = anomaly_from_record(record)
    outbox.notify_acknowledged(
        session, outbox.anomaly_finding(anomaly, "acknowledged"), clock=clock
    )
    return anomaly


# --- incidents --------------------------------------------------------------------------------


# What ``build_incidents`` reads of an anomaly: the evidence and the text stay in the database.
_CHAINED = [
    _ANOMALIES.c[name]
    for name in (
        "id",
        "dedup_key",
        "detector",
        "detector_version",
        "title",
        "severity",
        "score",
        "account_id",
        "region",
        "cluster",
        "principal",
        "identity",
        "source_ip",
        "first_seen",
        "last_seen",
        "count",
        "mitre_tactics",
        "status",
    )
]


def _chained(row: Any) -> Anomaly:
    return Anomaly(
        id=row.id,
        dedup_key=row.dedup_key,
        detector=row.detector,
        detector_version=row.detector_version,
        title=row.title,
        severity=Severity(row.severity),
        score=row.score,
        account_id=row.account_id,
        region=row.region,
        cluster=row.cluster,
        principal=row.principal,
        identity=row.identity,
        source_ip=row.source_ip,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        count=row.count,
        explanation="",
        evidence=(),
        mitre_tactics=tuple(row.mitre_tactics or ()),
        mitre_techniques=(),
        status=row.status,
    )


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
    found: list[Anomaly] = []
    for part in _chunks(identities):
        rows = session.execute(
            select(*_CHAINED).where(
                _ANOMALIES.c.identity.in_(part),
                _ANOMALIES.c.last_seen >= low,
                _ANOMALIES.c.first_seen <= high,
            )
        )
        found.extend(_chained(row) for row in rows)
    incidents = build_incidents(found, window=window)
    return _save_incidents(session, incidents, clock=clock, window=window)


def correlate_pending(
    session: Session,
    identities: Iterable[str],
    *,
    clock: Clock,
    window: timedelta = timedelta(hours=1),
    since: datetime | None = None,
) -> list[Incident]:
    """Correlate, in one pass, the identities that ``score_and_store(correlate=False)`` returned.

    What ``correlate_incidents`` does after each batch, for many batches at once: for each
    identity, the anomalies stored or changed since ``since`` (wall time, a day ago by
    default) are the new ones, and chains are looked for among that identity's anomalies
    within ``window`` of them. Running it again, or with identities that have nothing new,
    changes nothing but the incidents' ``updated_at``.
    """
    wanted = sorted({i for i in identities if i})
    if not wanted:
        return []
    since = since if since is not None else clock() - timedelta(days=1)
    ranges: list[tuple[str, datetime, datetime]] = []
    for part in _chunks(wanted):
        ranges.extend(
            session.execute(
                select(
                    _ANOMALIES.c.identity,
                    func.min(_ANOMALIES.c.first_seen),
                    func.max(_ANOMALIES.c.last_seen),
                )
                .where(_ANOMALIES.c.identity.in_(part), _ANOMALIES.c.updated_at >= since)
                .group_by(_ANOMALIES.c.identity)
            )
        )
    found: list[Anomaly] = []
    for part in _chunks(ranges):
        # One index range per identity (identity, last_seen), not one span for them all: a
        # backfill of old logs and live traffic may be days apart.
        rows = session.execute(
            select(*_CHAINED).where(
                or_(
                    *(
                        and_(
                            _ANOMALIES.c.identity == identity,
                            _ANOMALIES.c.last_seen >= low - window,
                            _ANOMALIES.c.first_seen <= high + window,
                        )
                        for identity, low, high in part
                    )
                )
            )
        )
        found.extend(_chained(row) for row in rows)
    incidents = build_incidents(found, window=window)
    return _save_incidents(session, incidents, clock=clock, window=window)


@dataclass(slots=True)
class _IncidentRow:
    """An incident row as ``_save_incidents`` changes it (the database is written at the end)."""

    id: str
    identity: str
    title: str
    severity: str
    severity_rank: int
    score: int
    account_ids: list[str]
    clusters: list[str]
    tactics: list[str]
    first_seen: datetime
    last_seen: datetime
    explanation: str
    status: str
    created_at: datetime
    updated_at: datetime
    links: set[str] = field(default_factory=set)  # added by this call
    existed: bool = True  # before this call

    def incident(self, links: Collection[str]) -> Incident:
        return Incident(
            id=self.id,
            identity=self.identity,
            title=self.title,
            severity=Severity(self.severity),
            score=self.score,
            account_ids=tuple(self.account_ids),
            clusters=tuple(self.clusters),
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            tactics=tuple(self.tactics),
            anomaly_ids=tuple(sorted(links)),
            explanation=self.explanation,
            status=self.status,
        )


_INCIDENT_COLUMNS = [c for c in _INCIDENTS.c if c.name != "acked_at"]
# What a chain seen again may change; identity, status and creation stay as they were.
_INCIDENT_UPDATES = (
    "title",
    "severity",
    "severity_rank",
    "score",
    "account_ids",
    "clusters",
    "tactics",
    "first_seen",
    "last_seen",
    "explanation",
    "updated_at",
)


def _save_incidents(
    session: Session, incidents: Sequence[Incident], *, clock: Clock, window: timedelta
) -> list[Incident]:
    """Merge incidents into the stored ones: read once, decide in memory, write twice.

    Decides exactly as saving them one by one would: in order, each joins the earliest
    stored incident of its identity within ``window`` (or the one with its id), including
    those the earlier ones of this call created or stretched.
    """
    if not incidents:
        return []
    session.flush()
    now = clock()
    low = min(i.first_seen for i in incidents) - window
    high = max(i.last_seen for i in incidents) + window
    identities = sorted({i.identity for i in incidents})
    ids = sorted({i.id for i in incidents})
    by_id: dict[str, _IncidentRow] = {}
    for who, which in zip_longest(_chunks(identities), _chunks(ids), fillvalue=()):
        rows = session.execute(
            select(*_INCIDENT_COLUMNS).where(
                or_(
                    and_(
                        _INCIDENTS.c.identity.in_(who),
                        _INCIDENTS.c.last_seen >= low,
                        _INCIDENTS.c.first_seen <= high,
                    ),
                    _INCIDENTS.c.id.in_(which),
                )
            )
        )
        for row in rows:
            by_id[row.id] = _IncidentRow(
                id=row.id,
                identity=row.identity,
                title=row.title,
                severity=row.severity,
                severity_rank=row.severity_rank,
                score=row.score,
                account_ids=list(row.account_ids or ()),
                clusters=list(row.clusters or ()),
                tactics=list(row.tactics or ()),
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                explanation=row.explanation,
                status=row.status,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
    by_identity: dict[str, list[_IncidentRow]] = defaultdict(list)
    for known in by_id.values():
        by_identity[known.identity].append(known)

    steps: list[tuple[_IncidentRow, Incident, frozenset[str]]] = []
    for incident in incidents:
        # A chain seen again with more (or earlier) anomalies is the same incident, not a new one.
        near = [
            r
            for r in by_identity[incident.identity]
            if r.last_seen >= incident.first_seen - window
            and r.first_seen <= incident.last_seen + window
        ]
        record: _IncidentRow | None = (
            min(near, key=lambda r: (r.first_seen, r.id)) if near else by_id.get(incident.id)
        )
        if record is None:
            record = _IncidentRow(
                id=incident.id,
                identity=incident.identity,
                title="",
                severity=incident.severity.value,
                severity_rank=incident.severity.rank,
                score=incident.score,
                account_ids=[],
                clusters=[],
                tactics=[],
                first_seen=incident.first_seen,
                last_seen=incident.last_seen,
                explanation="",
                status="open",
                created_at=now,
                updated_at=now,
                existed=False,
            )
            by_id[record.id] = record
            by_identity[record.identity].append(record)
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
        record.account_ids = sorted({*record.account_ids, *incident.account_ids})
        record.clusters = sorted({*record.clusters, *incident.clusters})
        record.first_seen = min(record.first_seen, incident.first_seen)
        record.last_seen = max(record.last_seen, incident.last_seen)
        record.updated_at = now
        record.links.update(incident.anomaly_ids)
        steps.append((record, record.incident(()), frozenset(record.links)))

    touched = {id(r): r for r, _, _ in steps}.values()
    linked: dict[str, set[str]] = defaultdict(set)
    for part in _chunks(sorted(r.id for r in touched if r.existed)):
        for incident_id, anomaly_id in session.execute(
            select(_LINKS.c.incident_id, _LINKS.c.anomaly_id).where(_LINKS.c.incident_id.in_(part))
        ):
            linked[incident_id].add(anomaly_id)

    insert = _insert(session)
    upsert = insert(_INCIDENTS)
    upsert = upsert.on_conflict_do_update(
        index_elements=["id"], set_={name: upsert.excluded[name] for name in _INCIDENT_UPDATES}
    )
    session.execute(
        upsert,
        [
            {
                "id": r.id,
                "identity": r.identity,
                "title": r.title,
                "severity": r.severity,
                "severity_rank": r.severity_rank,
                "score": r.score,
                "account_ids": r.account_ids,
                "clusters": r.clusters,
                "tactics": r.tactics,
                "first_seen": r.first_seen,
                "last_seen": r.last_seen,
                "explanation": r.explanation,
                "status": r.status,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in touched
        ],
    )
    links = [
        {"incident_id": r.id, "anomaly_id": anomaly_id}
        for r in touched
        for anomaly_id in sorted(r.links - linked[r.id])
    ]
    if links:
        session.execute(insert(_LINKS).on_conflict_do_nothing(), links)
    _expire(session, IncidentRecord, (r.id for r in touched))
    saved = [
        msgspec.structs.replace(snapshot, anomaly_ids=tuple(sorted(linked[record.id] | added)))
        for record, snapshot, added in steps
    ]
    outbox.notify_incidents(session, saved, clock=clock)  # in this transaction: an outbox
    return saved


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
    incident = incident_from_record(record)
    outbox.notify_acknowledged(
        session, outbox.incident_finding(incident, "acknowledged"), clock=clock
    )
    return incident


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
    # Identities of the anomalies stored, for ``correlate_pending`` when correlation is
    # left to a periodic task (sorted, without repeats).
    identities: tuple[str, ...] = ()
    # (detector, severity) of each anomaly this batch stored for the first time: repeats
    # folded into an existing anomaly are not here (``harvester_anomalies_total``).
    new: tuple[tuple[str, str], ...] = ()


def score_and_store(
    session: Session,
    scorer: Scorer,
    events: Sequence[Event],
    *,
    incident_window: timedelta = timedelta(hours=1),
    correlate: bool = True,
    suppressions: Sequence[SuppressionRule] | None = None,
    defer: Callable[[Sequence[str]], None] | None = None,
    owner: str = ANONYMOUS,
) -> StoreSummary:
    """Score a batch, store its anomalies (and incidents), commit, then commit detector state.

    The order is what makes a redelivered or redone batch safe: if anything fails before the
    database commit, the events are handed back (``abort``) for a retry; if the process dies
    between the two commits, the upsert absorbs the repeat.

    ``correlate=False`` leaves incidents to ``correlate_pending`` over the identities this
    returns; ``defer`` does the same and hands it those identities before the commit, so a
    process that dies after the commit cannot forget them (``harvester.correlation``).
    ``suppressions`` are the rules in force, for a caller that caches them; they are read
    from the database when None. ``owner`` (a task id) lets a retry of this batch take its
    own pending claims back if the detector state could not be written after the commit.
    """
    clock = scorer.clock
    if suppressions is None:
        suppressions = active_suppressions(session, now=clock())
    result = scorer.score(events, suppressions=suppressions, owner=owner)
    try:
        inserted: set[str] = set()
        stored = save_anomalies(
            session,
            result.anomalies,
            clock=clock,
            evidence_cap=scorer.config.evidence_cap,
            inserted=inserted,
        )
        identities = tuple(sorted({a.identity for a in stored if a.identity}))
        incidents = (
            correlate_incidents(session, stored, clock=clock, window=incident_window)
            if correlate and defer is None
            else []
        )
        if defer is not None and identities:
            defer(identities)
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
        identities=identities,
        new=tuple((a.detector, a.severity.value) for a in stored if a.dedup_key in inserted),
    )
