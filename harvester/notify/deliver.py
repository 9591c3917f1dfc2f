"""Draining the outbox: claim due deliveries, send them, record every attempt.

Claims are short transactions (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
workers never claim the same row) that set a lease (``claimed_until``); a worker killed while
sending leaves its claims to expire and be sent again, with the same delivery id, so a
receiver that de-duplicates by ``X-Harvester-Delivery`` sees each delivery once. Each result
is committed on its own, so at most the deliveries in flight are resent.

A destination that fails (timeout, refused connection, 5xx, 429) is paused for an
exponential backoff with jitter, or its Retry-After when longer, and nothing more is sent to
it in this drain: one probe per drain while it is down, everything within one dispatch
interval of it coming back. A delivery older than the destination's ``max_age`` is ``dead``.
Beyond ``rate_limit`` sends a minute, the rest of a destination's due deliveries go as one
digest message.

Once deliveries are claimed, a database that goes away (a restart, dropped connections) is
waited for, up to ``Policy.db_outage``, by each step of the send loop: a send whose result
could not be committed is recorded when the database is back instead of being resent after the
lease, and the claimed rest is still sent in this drain. Beyond that the error escapes and the
claims expire with their lease (sent again then, with the same delivery ids).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from time import perf_counter
from typing import Any, TypeVar, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harvester.clock import Clock
from harvester.crypto import SecretBox
from harvester.db.notify_models import DestinationRecord, NotificationAttempt, NotificationRecord
from harvester.detect.model import Severity
from harvester.notify.model import DestinationSpec
from harvester.notify.outbox import remind_open
from harvester.notify.payloads import Delivery, Outcome
from harvester.notify.senders import SENDERS, SendContext
from harvester.notify.store import destination_spec

log = logging.getLogger(__name__)

__all__ = ["DrainResult", "Policy", "backoff", "drain", "send_one"]

RATE_WINDOW = timedelta(minutes=1)
_OUTBOX = cast(Table, NotificationRecord.__table__)
T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    lease: timedelta = timedelta(minutes=5)  # longer than any send (timeouts are at most 2m)
    backoff_base: timedelta = timedelta(seconds=1)
    # Short: a receiver back from an outage gets its backlog within about one dispatch
    # interval. Only one delivery per destination probes it per drain, so this is cheap.
    backoff_max: timedelta = timedelta(seconds=30)
    retry_after_max: timedelta = timedelta(hours=1)
    batch: int = 500
    # How long a drain holding claims waits for its database to come back (a restart).
    db_outage: timedelta = timedelta(seconds=30)


@dataclass
class DrainResult:
    # (destination, outcome) -> count; outcome is sent | failed | timeout | throttled | dead |
    # digested, the values of harvester_notifications_total's outcome label.
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: list[tuple[str, float]] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(n for (_, outcome), n in self.outcomes.items() if outcome == "sent")

    def summary(self) -> dict[str, Any]:
        return {f"{d}:{o}": n for (d, o), n in sorted(self.outcomes.items())}


def backoff(
    failures: int, policy: Policy, rng: random.Random, retry_after: float | None
) -> timedelta:
    """Exponential in consecutive failures, with jitter (50–100 %), never below Retry-After."""
    base = policy.backoff_base.total_seconds() * 2 ** max(0, failures - 1)
    delay = min(base, policy.backoff_max.total_seconds()) * rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.retry_after_max.total_seconds()))
    return timedelta(seconds=delay)


def _retrying(policy: Policy, step: Callable[[], T]) -> T:
    """Run ``step`` (one transaction, safe to redo) until the database answers, for up to
    ``policy.db_outage``."""
    deadline = time.monotonic() + policy.db_outage.total_seconds()
    delay = 0.1
    while True:
        try:
            return step()
        except DBAPIError as exc:
            # A dropped or refused connection, as workers.base judges it transient.
            lost = exc.connection_invalidated or isinstance(exc, OperationalError)
            if not lost or time.monotonic() + delay > deadline:
                raise
            log.warning("notify: database unavailable, retrying in %.1fs: %s", delay, exc.orig)
            time.sleep(delay)  # the database restarting, not work to wait for
            delay = min(delay * 2, 2.0)


def _due(session: Session, now: datetime, limit: int, lease: timedelta) -> list[NotificationRecord]:
    """Claim (lease) up to ``limit`` due deliveries in one statement, and return them.

    One UPDATE … WHERE id IN (due) AND still claimable … RETURNING, as the transaction's first
    statement: on PostgreSQL the due rows are locked with SKIP LOCKED (another worker's are
    skipped, not waited for); on SQLite the UPDATE takes the write lock before it reads, so
    two processes cannot both claim a row (a SELECT first would let both read it).
    """
    paused = select(DestinationRecord.name).where(DestinationRecord.paused_until > now)
    claimable = (
        _OUTBOX.c.status == "pending",
        _OUTBOX.c.next_at <= now,
        or_(_OUTBOX.c.claimed_until.is_(None), _OUTBOX.c.claimed_until < now),
        _OUTBOX.c.destination.not_in(paused),
    )
    due = (
        select(_OUTBOX.c.delivery_id)
        .where(*claimable)
        .order_by(_OUTBOX.c.next_at, _OUTBOX.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.scalars(
        update(_OUTBOX)
        .where(_OUTBOX.c.delivery_id.in_(due.scalar_subquery()), *claimable)
        .values(claimed_until=now + lease)
        .returning(_OUTBOX.c.delivery_id)
    ).all()
    if not claimed:
        return []
    rows = session.scalars(
        select(NotificationRecord).where(NotificationRecord.delivery_id.in_(claimed))
    )
    return sorted(rows, key=lambda r: (r.next_at, r.created_at))


def _claim(
    sessions: sessionmaker[Session], *, box: SecretBox, now: datetime, policy: Policy
) -> tuple[dict[str, DestinationSpec], dict[str, list[Delivery]], Counter[str]]:
    """Lease the due deliveries: destinations, their deliveries, and dead rows per destination."""
    by_destination: dict[str, list[Delivery]] = defaultdict(list)
    dead: Counter[str] = Counter()
    with sessions() as session, session.begin():
        rows = _due(session, now, policy.batch, policy.lease)
        names = {r.destination for r in rows}
        records = {
            d.name: d
            for d in session.scalars(
                select(DestinationRecord).where(DestinationRecord.name.in_(names))
            )
        }
        specs = {name: destination_spec(r, box=box) for name, r in records.items()}
        for row in rows:
            spec = specs.get(row.destination)
            if spec is None or now - row.created_at > spec.max_age:
                row.status = "dead"
                row.claimed_until = None
                row.last_error = (
                    "the destination was removed"
                    if spec is None
                    else f"{row.last_error or 'not sent'}; gave up after max_age {spec.max_age}"
                )
                dead[row.destination] += 1
                log.warning(
                    "notify: delivery %s to %s is dead: %s",
                    row.delivery_id,
                    row.destination,
                    row.last_error,
                )
                continue
            if not spec.enabled:
                row.claimed_until = None
                continue
            by_destination[row.destination].append(
                Delivery(
                    delivery_id=row.delivery_id,
                    destination=row.destination,
                    kind=row.kind,
                    event=row.event,
                    payload=row.payload,
                    attempts=row.attempts,
                )
            )
    return specs, by_destination, dead


def _sent_last_minute(session: Session, destination: str, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(NotificationAttempt)
            .where(
                NotificationAttempt.destination == destination,
                NotificationAttempt.outcome == "sent",
                NotificationAttempt.at > now - RATE_WINDOW,
            )
        )
        or 0
    )


def _sent_last(sessions: sessionmaker[Session], destination: str, now: datetime) -> int:
    with sessions() as session:
        return _sent_last_minute(session, destination, now)


def _failures(sessions: sessionmaker[Session], destination: str) -> int:
    """Consecutive failures of the destination, counting the one being handled."""
    with sessions() as session:
        record = session.get(DestinationRecord, destination)
        return (record.failures if record else 0) + 1


def _digest(deliveries: list[Delivery], destination: str) -> Delivery:
    findings = [
        {
            "delivery_id": d.delivery_id,
            "kind": d.kind,
            "event": d.event,
            **{
                k: d.payload.get(k)
                for k in ("id", "severity", "detector", "title", "account_id", "cluster")
            },
        }
        for d in deliveries
    ]
    worst = max(
        (Severity(str(d.payload["severity"])) for d in deliveries if d.payload.get("severity")),
        key=lambda s: s.rank,
        default=Severity.info,
    )
    payload = {
        "id": f"digest-{uuid.uuid4().hex[:12]}",
        "severity": worst.value,
        "detector": "notify.digest",
        "title": f"{len(findings)} more findings (rate limit reached)",
        "explanation": (
            f"More than this destination's rate limit arrived within a minute; these "
            f"{len(findings)} are summarized here instead of sent one by one."
        ),
        "count": len(findings),
        "findings": findings,
    }
    return Delivery(
        delivery_id=str(uuid.uuid4()),
        destination=destination,
        kind="digest",
        event="digest",
        payload=payload,
    )


def _fold_into_digest(
    sessions: sessionmaker[Session], folded: list[Delivery], destination: str, now: datetime
) -> Delivery:
    """Replace deliveries by one digest row (in one transaction) and return the digest."""
    digest = _digest(folded, destination)
    with sessions() as session, session.begin():
        session.add(
            NotificationRecord(
                delivery_id=digest.delivery_id,
                destination=destination,
                kind="digest",
                subject_id=digest.payload["id"],
                event="digest",
                severity_rank=("info", "low", "medium", "high", "critical").index(
                    digest.payload["severity"]
                ),
                payload=digest.payload,
                status="pending",
                attempts=0,
                next_at=now,
                claimed_until=now,
                created_at=now,
            )
        )
        for d in folded:
            row = session.get(NotificationRecord, d.delivery_id)
            if row is not None:
                row.status = "sent"
                row.sent_at = now
                row.claimed_until = None
                row.last_error = f"sent in digest {digest.delivery_id}"
    return digest


def send_one(
    spec: DestinationSpec, delivery: Delivery, context: SendContext
) -> tuple[Outcome, float]:
    sender = SENDERS.get(spec.type)
    started = perf_counter()
    if sender is None:
        outcome = Outcome(ok=False, error=f"no sender for type {spec.type!r}", outcome="failed")
    else:
        try:
            outcome = sender(spec, delivery, context)
        except Exception as exc:  # a sender's bug must not stop the other destinations
            log.exception("notify: sender %s failed", spec.type)
            outcome = Outcome(ok=False, error=f"{type(exc).__name__}: {exc}", outcome="failed")
    return outcome, perf_counter() - started


def _record(
    sessions: sessionmaker[Session],
    delivery: Delivery,
    outcome: Outcome,
    latency: float,
    *,
    now: datetime,
    pause: timedelta | None,
) -> None:
    with sessions() as session, session.begin():
        if session.scalar(
            select(NotificationAttempt.id).where(
                NotificationAttempt.delivery_id == delivery.delivery_id,
                NotificationAttempt.at == now,
            )
        ):
            # Already recorded: a redo (_retrying) whose first try committed just before
            # its connection was lost.
            return
        row = session.get(NotificationRecord, delivery.delivery_id)
        if row is not None:
            row.attempts += 1
            row.claimed_until = None
            if outcome.ok:
                row.status = "sent"
                row.sent_at = now
                row.last_error = None
            else:
                row.last_error = outcome.error
                row.next_at = now + (pause or timedelta())
        session.add(
            NotificationAttempt(
                delivery_id=delivery.delivery_id,
                destination=delivery.destination,
                at=now,
                outcome=outcome.label,
                http_status=outcome.http_status,
                latency_seconds=latency,
                error=outcome.error,
            )
        )
        destination = session.get(DestinationRecord, delivery.destination)
        if destination is not None:
            if outcome.ok:
                destination.failures, destination.paused_until = 0, None
            else:
                destination.failures += 1
                destination.paused_until = now + (pause or timedelta())


def _release(sessions: sessionmaker[Session], deliveries: list[Delivery]) -> None:
    if not deliveries:
        return
    with sessions() as session, session.begin():
        for d in deliveries:
            row = session.get(NotificationRecord, d.delivery_id)
            if row is not None and row.status == "pending":
                row.claimed_until = None


def drain(
    sessions: sessionmaker[Session],
    *,
    box: SecretBox,
    clock: Clock,
    context: Callable[[datetime], SendContext],
    policy: Policy = Policy(),
    rng: random.Random | None = None,
) -> DrainResult:
    """Send what is due once; returns counts per (destination, outcome)."""
    rng = rng or random.Random()  # noqa: S311  jitter, not cryptography
    result = DrainResult()
    now = clock()
    with sessions() as session, session.begin():
        remind_open(session, clock=clock)
    specs, by_destination, dead = _claim(sessions, box=box, now=now, policy=policy)
    for name, count in dead.items():
        result.outcomes[(name, "dead")] += count
    for name, deliveries in by_destination.items():
        spec = specs[name]
        budget = spec.rate_limit - _retrying(policy, partial(_sent_last, sessions, name, now))
        queue = list(deliveries)
        if len(queue) > budget:
            keep = max(0, budget - 1)
            if budget >= 1:
                folded = queue[keep:]
                queue = [*queue[:keep], _fold_into_digest(sessions, folded, name, now)]
                result.outcomes[(name, "digested")] += len(folded)
            else:
                rest = queue[keep:]
                _retrying(policy, partial(_release, sessions, rest))
                queue = queue[:keep]
        for index, delivery in enumerate(queue):
            outcome, latency = send_one(spec, delivery, context(clock()))
            result.outcomes[(name, outcome.label)] += 1
            result.latencies.append((name, latency))
            pause = None
            if not outcome.ok:
                failures = _retrying(policy, partial(_failures, sessions, name))
                pause = backoff(failures, policy, rng, outcome.retry_after)
                log.warning(
                    "notify: delivery %s to %s failed (%s), retry in %.0fs",
                    delivery.delivery_id,
                    name,
                    outcome.error,
                    pause.total_seconds(),
                )
            _retrying(
                policy,
                partial(_record, sessions, delivery, outcome, latency, now=clock(), pause=pause),
            )
            if not outcome.ok:
                # Paused: the others wait for the next drain, unclaimed, untouched.
                rest = queue[index + 1 :]
                _retrying(policy, partial(_release, sessions, rest))
                break
    return result
