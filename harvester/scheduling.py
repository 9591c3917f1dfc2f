"""When each source runs: its cadence, spread over the interval by a deterministic offset.

10,000 sources with a 5-minute cadence must not all fire at :00. Each source gets an offset
within its cadence derived from its id, so the load is flat and the same after a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from harvester.db.models import Account, Source

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def offset_seconds(source_id: int, cadence: timedelta) -> int:
    """A stable offset in [0, cadence) for a source, independent of Python's hash seed."""
    digest = hashlib.blake2b(str(source_id).encode(), digest_size=8).digest()
    period = max(1, int(cadence.total_seconds()))
    return int.from_bytes(digest, "big") % period


def next_run_after(now: datetime, *, source_id: int, cadence: timedelta) -> datetime:
    """The first slot of this source strictly after ``now``."""
    period = max(1, int(cadence.total_seconds()))
    offset = offset_seconds(source_id, cadence)
    elapsed = int((now - EPOCH).total_seconds()) - offset
    slots = elapsed // period + 1
    return EPOCH + timedelta(seconds=slots * period + offset)


@dataclass(frozen=True)
class DueSource:
    id: int
    cadence: timedelta
    next_run_at: datetime


def due_sources(
    session: Session, *, now: datetime, default_cadence: timedelta, limit: int = 100_000
) -> list[DueSource]:
    """Enabled sources whose slot has come, with their next slot already computed.

    On PostgreSQL the rows are locked with SKIP LOCKED, so two dispatchers running at once
    (a beat failing over) split the work instead of both taking it.
    """
    query = (
        select(Source.id, Account.cadence_seconds)
        .join(Account, Source.account_pk == Account.id)
        .where(
            Source.enabled.is_(True),
            Account.enabled.is_(True),
            or_(Source.next_run_at.is_(None), Source.next_run_at <= now),
        )
        .order_by(Source.next_run_at.nulls_first(), Source.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Source)
    due = []
    for source_id, cadence_seconds in session.execute(query):
        cadence = timedelta(seconds=cadence_seconds) if cadence_seconds else default_cadence
        due.append(
            DueSource(source_id, cadence, next_run_after(now, source_id=source_id, cadence=cadence))
        )
    return due


def mark_scheduled(session: Session, due: list[DueSource]) -> None:
    """Move each dispatched source to its next slot: one statement on PostgreSQL."""
    if not due:
        return
    if session.get_bind().dialect.name == "postgresql":
        # One UPDATE ... FROM unnest() instead of 10,000 single-row updates.
        session.execute(
            text(
                "UPDATE sources SET next_run_at = v.t "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:times AS timestamptz[])) AS v(id, t) "
                "WHERE sources.id = v.id"
            ),
            {"ids": [d.id for d in due], "times": [d.next_run_at for d in due]},
        )
        return
    session.execute(update(Source), [{"id": d.id, "next_run_at": d.next_run_at} for d in due])
