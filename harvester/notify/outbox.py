"""Writing the outbox: notification rows in the caller's transaction, never committed here.

``harvester.detect.repository`` calls these where it stores anomalies and incidents, so a
finding and its notifications commit (or roll back) together. A redone batch finds the rows
its first run wrote (routing reads them as "already sent") and adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.db.anomaly_models import AnomalyRecord
from harvester.db.notify_models import DestinationRecord, NotificationRecord
from harvester.detect import repository
from harvester.detect.model import Anomaly, Incident
from harvester.detect.render import anomaly_record, incident_record
from harvester.notify.model import DestinationSpec
from harvester.notify.routing import Change, Finding, Route, Sent, route
from harvester.notify.store import destination_spec

__all__ = [
    "anomaly_finding",
    "enqueue",
    "incident_finding",
    "last_sent",
    "notify_acknowledged",
    "notify_anomalies",
    "notify_incidents",
    "remind_open",
]

_OUTBOX = cast(Table, NotificationRecord.__table__)
_CHUNK = 500


def anomaly_finding(anomaly: Anomaly, change: Change) -> Finding:
    return Finding(
        kind="anomaly",
        subject_id=anomaly.id,
        change=change,
        severity=anomaly.severity,
        detector=anomaly.detector,
        account_ids=(anomaly.account_id,) if anomaly.account_id else (),
        clusters=(anomaly.cluster,) if anomaly.cluster else (),
        status=anomaly.status,
        record=anomaly_record(anomaly),
    )


def incident_finding(incident: Incident, change: Change) -> Finding:
    return Finding(
        kind="incident",
        subject_id=incident.id,
        change=change,
        severity=incident.severity,
        detector="incident.attack-chain",
        account_ids=incident.account_ids,
        clusters=incident.clusters,
        status=incident.status,
        record=incident_record(incident),
    )


def _destinations(session: Session) -> list[DestinationSpec]:
    records = session.scalars(select(DestinationRecord).where(DestinationRecord.enabled))
    return [destination_spec(r) for r in records]


def last_sent(session: Session, subject_ids: Collection[str]) -> dict[tuple[str, str], Sent]:
    """What each destination was last sent (or will be: pending rows count) of these findings."""
    found: dict[tuple[str, str], Sent] = {}
    ids = sorted(set(subject_ids))
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(
                _OUTBOX.c.subject_id,
                _OUTBOX.c.destination,
                func.max(_OUTBOX.c.created_at),
                func.max(_OUTBOX.c.severity_rank),
            )
            .where(_OUTBOX.c.subject_id.in_(ids[start : start + _CHUNK]))
            .group_by(_OUTBOX.c.subject_id, _OUTBOX.c.destination)
        )
        for subject_id, destination, at, rank in rows:
            found[(subject_id, destination)] = Sent(at=at, severity_rank=rank)
    return found


def enqueue(session: Session, routes: Iterable[Route], *, now: datetime) -> list[str]:
    """One pending row per route (one executemany); returns the delivery ids."""
    rows: list[dict[str, Any]] = []
    for r in routes:
        delivery_id = str(uuid.uuid4())
        rows.append(
            {
                "delivery_id": delivery_id,
                "destination": r.destination,
                "kind": r.finding.kind,
                "subject_id": r.finding.subject_id,
                "event": r.event,
                "severity_rank": r.finding.severity.rank,
                "payload": dict(r.finding.record),
                "status": "pending",
                "attempts": 0,
                "next_at": now,
                "created_at": now,
            }
        )
    if rows:
        session.execute(insert(_OUTBOX), rows)
    return [row["delivery_id"] for row in rows]


def _notify(session: Session, findings: Sequence[Finding], *, clock: Clock) -> list[str]:
    if not findings:
        return []
    destinations = _destinations(session)
    if not destinations:
        return []
    now = clock()
    sent = last_sent(session, [f.subject_id for f in findings])
    return enqueue(session, route(findings, destinations, last_sent=sent, now=now), now=now)


def notify_anomalies(
    session: Session,
    stored: Sequence[Anomaly],
    *,
    inserted: Collection[str],
    escalated: Collection[str],
    clock: Clock,
) -> list[str]:
    """Outbox rows for anomalies just stored (``inserted``/``escalated`` hold dedup keys)."""

    def change(a: Anomaly) -> Change:
        if a.dedup_key in inserted:
            return "new"
        return "escalated" if a.dedup_key in escalated else "repeat"

    return _notify(session, [anomaly_finding(a, change(a)) for a in stored], clock=clock)


def notify_incidents(session: Session, incidents: Sequence[Incident], *, clock: Clock) -> list[str]:
    """Outbox rows for incidents just created or stretched (an unseen one is new)."""
    latest = {i.id: i for i in incidents}  # a batch may touch one incident several times
    return _notify(session, [incident_finding(i, "new") for i in latest.values()], clock=clock)


def notify_acknowledged(session: Session, finding: Finding, *, clock: Clock) -> list[str]:
    return _notify(session, [finding], clock=clock)


def remind_open(session: Session, *, clock: Clock) -> list[str]:
    """Reminders for open anomalies a destination was last sent ``renotify_after`` ago or more.

    For findings that stay open without being seen again (a repeat is reminded when stored).
    The destinations' rows are locked first (an UPDATE: a row lock on PostgreSQL, the write
    lock on SQLite), so two workers draining at once do not both write the same reminder.
    The caller commits.
    """
    now = clock()
    destinations = [d for d in _destinations(session) if d.enabled]
    if not destinations:
        return []
    names = [d.name for d in destinations]
    session.execute(
        update(DestinationRecord)
        .where(DestinationRecord.name.in_(names))
        .values(paused_until=DestinationRecord.paused_until)
    )
    due: set[str] = set()
    for destination in destinations:
        rows = session.execute(
            select(_OUTBOX.c.subject_id)
            .join(AnomalyRecord, AnomalyRecord.id == _OUTBOX.c.subject_id)
            .where(
                _OUTBOX.c.destination == destination.name,
                _OUTBOX.c.kind == "anomaly",
                AnomalyRecord.status == "open",
            )
            .group_by(_OUTBOX.c.subject_id)
            .having(func.max(_OUTBOX.c.created_at) <= now - destination.renotify_after)
        )
        due.update(subject_id for (subject_id,) in rows)
    if not due:
        return []
    anomalies = session.scalars(select(AnomalyRecord).where(AnomalyRecord.id.in_(sorted(due))))
    # Imported as a module: harvester.detect.repository imports this one.
    findings = [anomaly_finding(repository.anomaly_from_record(a), "repeat") for a in anomalies]
    sent = last_sent(session, due)
    return enqueue(session, route(findings, destinations, last_sent=sent, now=now), now=now)
