"""The processed-object ledger and the per-scope watermark, over SQLAlchemy 2.0 sessions.

Every function takes the session it works in and never commits: the caller decides the
transaction (the harvest task commits after queuing, a worker after recording its result).
Upserts use the dialect's ``INSERT ... ON CONFLICT`` on SQLite and PostgreSQL, so two
workers recording the same object race on the unique key, not on a select-then-insert.

Statuses: ``queued`` (handed to a worker), ``done``, ``corrupt`` (permanent: the object
cannot be read or parsed; never retried), ``failed`` (transient; retried up to a bound,
then left ``failed`` and reported).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from harvester.db.models import Cursor, ProcessedObject
from harvester.sources.layouts import ParsedKey, classify

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_PRUNE_MARGIN = timedelta(hours=24)
DEFAULT_CLOCK_SKEW = timedelta(minutes=15)
# The last sweep's start is kept in ``cursors`` under this scope prefix: the table has one
# time column per (source, scope), and a sweep marker is exactly that.
SWEEP_SCOPE_PREFIX = "sweep:"

_CHUNK = 400  # rows per multi-row upsert or IN list: well under SQLite's variable limit


class Status(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    CORRUPT = "corrupt"
    FAILED = "failed"


COMPLETE = (Status.DONE, Status.CORRUPT)


class WorkReason(StrEnum):
    NEW = "new"
    CHANGED = "changed"  # the key was seen before with another ETag: a new version
    RETRY = "retry"  # a transient failure, retried
    REQUEUE = "requeue"  # queued so long ago that its worker must have died
    LATE = "late"  # found by a sweep: arrived after the lateness window
    BACKFILL = "backfill"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row, as the pure planners see it."""

    key: str
    etag: str
    scope: str
    object_time: datetime
    last_modified: datetime | None
    status: Status
    attempts: int
    updated_at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An object to hand to a worker, with what the ledger needs to record it."""

    key: str
    etag: str
    scope: str
    object_time: datetime
    last_modified: datetime | None
    size: int | None
    reason: WorkReason


def normalize_etag(etag: str) -> str:
    """S3 quotes ETags in listings and headers; the ledger keeps them bare."""
    return etag.strip('"')


def sweep_scope(scope: str) -> str:
    return f"{SWEEP_SCOPE_PREFIX}{scope}"


def retention_start(
    watermark: datetime, *, lateness_window: timedelta, margin: timedelta
) -> datetime:
    """The oldest object time the ledger still keeps every row for.

    The listing reaches back to ``W - lateness_window`` floored to its folder granularity
    (an hour for EKS, a minute for CloudTrail); the hour floor covers both, so a row the
    listing can still return is never pruned, whatever the margin.
    """
    reach = (watermark - lateness_window).replace(minute=0, second=0, microsecond=0)
    return reach - margin


def next_watermark(
    old: datetime, *, oldest_incomplete: datetime | None, newest_complete: datetime | None
) -> datetime:
    """The watermark rule: never past an incomplete object, never backwards."""
    if oldest_incomplete is not None:
        candidate = oldest_incomplete
    elif newest_complete is not None:
        candidate = newest_complete
    else:
        candidate = old
    return max(old, candidate)


# --- dialect upserts ------------------------------------------------------------------------

_Setter = Callable[[Any], Mapping[str, Any]]


def _upsert(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    *,
    set_: _Setter,
    where: ColumnElement[bool] | None = None,
) -> None:
    """INSERT ``rows`` into the ledger; on (source_id, key, etag) conflict apply ``set_``.

    ``set_`` receives the statement's ``excluded`` row so it can refer to the new values.
    """
    if not rows:
        return
    index = ["source_id", "key", "etag"]
    dialect = session.get_bind().dialect.name
    for start in range(0, len(rows), _CHUNK):
        chunk = list(rows[start : start + _CHUNK])
        if dialect == "postgresql":
            pg = postgresql.insert(ProcessedObject).values(chunk)
            session.execute(
                pg.on_conflict_do_update(index_elements=index, set_=set_(pg.excluded), where=where)
            )
        elif dialect == "sqlite":
            lite = sqlite.insert(ProcessedObject).values(chunk)
            session.execute(
                lite.on_conflict_do_update(
                    index_elements=index, set_=set_(lite.excluded), where=where
                )
            )
        else:
            raise NotImplementedError(f"the ledger supports SQLite and PostgreSQL, not {dialect}")


def _insert_cursor_if_missing(
    session: Session, *, source_id: int, scope: str, watermark: datetime, now: datetime
) -> bool:
    """Create a cursor row unless one exists; True if this call created it."""
    values = {"source_id": source_id, "scope": scope, "watermark": watermark, "updated_at": now}
    index = ["source_id", "scope"]
    dialect = session.get_bind().dialect.name
    # RETURNING, not rowcount: the ORM's insert path does not report a rowcount on psycopg.
    if dialect == "postgresql":
        pg = postgresql.insert(Cursor).values(values).on_conflict_do_nothing(index_elements=index)
        created = session.execute(pg.returning(Cursor.id)).first()
    elif dialect == "sqlite":
        lite = sqlite.insert(Cursor).values(values).on_conflict_do_nothing(index_elements=index)
        created = session.execute(lite.returning(Cursor.id)).first()
    else:
        raise NotImplementedError(f"the ledger supports SQLite and PostgreSQL, not {dialect}")
    return created is not None


def _identity(key: str, object_time: datetime | None, scope: str | None) -> tuple[datetime, str]:
    if object_time is not None and scope is not None:
        return object_time, scope
    parsed = classify(key)
    if not isinstance(parsed, ParsedKey):
        raise ValueError(f"cannot record {key!r} without object_time and scope: {parsed.detail}")
    return (object_time or parsed.time, parsed.scope if scope is None else scope)


def _row(
    *,
    source_id: int,
    key: str,
    etag: str,
    scope: str,
    object_time: datetime,
    last_modified: datetime | None,
    status: Status,
    now: datetime,
    events: int = 0,
    size: int = 0,
    sha256: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "key": key,
        "etag": normalize_etag(etag),
        "scope": scope,
        "object_time": object_time,
        "last_modified": last_modified,
        "status": status.value,
        "events": events,
        "bytes": size,
        "sha256": sha256,
        "error": error,
        "attempts": 1,
        "first_seen_at": now,
        "updated_at": now,
    }


# --- recording what happened to an object ---------------------------------------------------


def mark_queued(
    session: Session, *, source_id: int, objects: Iterable[WorkItem], now: datetime
) -> int:
    """Record that ``objects`` were handed to workers; returns how many.

    ``attempts`` counts dispatches, so an object that kills its worker every time is given
    up after a bounded number of requeues; re-queuing a completed row (a backfill) starts
    the count again.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for item in objects:
        row = _row(
            source_id=source_id,
            key=item.key,
            etag=item.etag,
            scope=item.scope,
            object_time=item.object_time,
            last_modified=item.last_modified,
            status=Status.QUEUED,
            now=now,
        )
        rows[(row["key"], row["etag"])] = row
    _upsert(
        session,
        list(rows.values()),
        set_=lambda new: {
            "status": Status.QUEUED.value,
            "attempts": case(
                (ProcessedObject.status.in_([s.value for s in COMPLETE]), 1),
                else_=ProcessedObject.attempts + 1,
            ),
            "last_modified": func.coalesce(new.last_modified, ProcessedObject.last_modified),
            "updated_at": now,
        },
    )
    return len(rows)


def mark_done(
    session: Session,
    *,
    source_id: int,
    key: str,
    etag: str,
    events: int,
    bytes: int,  # the ledger column's name, as callers know it
    sha256: str,
    now: datetime,
    object_time: datetime | None = None,
    scope: str | None = None,
) -> None:
    """Record a completed object. Idempotent; a redelivered result overwrites the same values.

    ``object_time`` and ``scope`` are only needed for a row the ledger lacks, and are read
    from the key when not given.
    """
    object_time, scope = _identity(key, object_time, scope)
    row = _row(
        source_id=source_id,
        key=key,
        etag=etag,
        scope=scope,
        object_time=object_time,
        last_modified=None,
        status=Status.DONE,
        now=now,
        events=events,
        size=bytes,
        sha256=sha256,
    )
    _upsert(
        session,
        [row],
        set_=lambda _new: {
            "status": Status.DONE.value,
            "events": events,
            "bytes": bytes,
            "sha256": sha256,
            "error": None,
            "updated_at": now,
        },
    )


def mark_corrupt(
    session: Session,
    *,
    source_id: int,
    key: str,
    etag: str,
    error: str,
    now: datetime,
    object_time: datetime | None = None,
    scope: str | None = None,
) -> None:
    """Record a permanent failure: the source moves on. A ``done`` row stays done."""
    object_time, scope = _identity(key, object_time, scope)
    row = _row(
        source_id=source_id,
        key=key,
        etag=etag,
        scope=scope,
        object_time=object_time,
        last_modified=None,
        status=Status.CORRUPT,
        now=now,
        error=error,
    )
    _upsert(
        session,
        [row],
        set_=lambda _new: {"status": Status.CORRUPT.value, "error": error, "updated_at": now},
        where=ProcessedObject.status != Status.DONE.value,
    )


def mark_failed(
    session: Session,
    *,
    source_id: int,
    key: str,
    etag: str,
    error: str,
    now: datetime,
    object_time: datetime | None = None,
    scope: str | None = None,
) -> None:
    """Record a transient failure, to be retried. A completed row is never downgraded."""
    object_time, scope = _identity(key, object_time, scope)
    row = _row(
        source_id=source_id,
        key=key,
        etag=etag,
        scope=scope,
        object_time=object_time,
        last_modified=None,
        status=Status.FAILED,
        now=now,
        error=error,
    )
    _upsert(
        session,
        [row],
        set_=lambda _new: {"status": Status.FAILED.value, "error": error, "updated_at": now},
        where=ProcessedObject.status.not_in([s.value for s in COMPLETE]),
    )


# --- reading the ledger ---------------------------------------------------------------------


def _entry(row: ProcessedObject) -> LedgerEntry:
    return LedgerEntry(
        key=row.key,
        etag=row.etag,
        scope=row.scope,
        object_time=row.object_time,
        last_modified=row.last_modified,
        status=Status(row.status),
        attempts=row.attempts,
        updated_at=row.updated_at,
        error=row.error,
    )


def load_entries(
    session: Session, *, source_id: int, scope: str, keys: Collection[str]
) -> list[LedgerEntry]:
    """The rows of ``keys`` (any version), plus every incomplete row of the scope.

    Incomplete rows come along whether or not they were listed, so retries and requeues
    never depend on the listing still reaching them.
    """
    found: dict[int, LedgerEntry] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        stmt = select(ProcessedObject).where(
            ProcessedObject.source_id == source_id, ProcessedObject.key.in_(chunk)
        )
        for row in session.scalars(stmt):
            found[row.id] = _entry(row)
    incomplete = select(ProcessedObject).where(
        ProcessedObject.source_id == source_id,
        ProcessedObject.scope == scope,
        ProcessedObject.status.in_([Status.QUEUED.value, Status.FAILED.value]),
    )
    for row in session.scalars(incomplete):
        found[row.id] = _entry(row)
    return list(found.values())


def get_entry(session: Session, *, source_id: int, key: str, etag: str) -> LedgerEntry | None:
    row = session.scalars(
        select(ProcessedObject).where(
            ProcessedObject.source_id == source_id,
            ProcessedObject.key == key,
            ProcessedObject.etag == normalize_etag(etag),
        )
    ).one_or_none()
    return None if row is None else _entry(row)


def failed_entries(
    session: Session, *, source_id: int, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> list[LedgerEntry]:
    """Objects given up after ``max_attempts``: what to report, since nothing retries them."""
    stmt = (
        select(ProcessedObject)
        .where(
            ProcessedObject.source_id == source_id,
            ProcessedObject.status == Status.FAILED.value,
            ProcessedObject.attempts >= max_attempts,
        )
        .order_by(ProcessedObject.object_time)
    )
    return [_entry(row) for row in session.scalars(stmt)]


# --- watermark, sweep marker and pruning ----------------------------------------------------


def _cursor(session: Session, *, source_id: int, scope: str) -> Cursor | None:
    return session.scalars(
        select(Cursor).where(Cursor.source_id == source_id, Cursor.scope == scope)
    ).one_or_none()


def ensure_cursor(
    session: Session, *, source_id: int, scope: str, now: datetime, lookback: timedelta
) -> datetime:
    """The scope's watermark, starting a new scope at ``now - lookback``.

    A new scope also gets a sweep marker at ``now``: everything already in the bucket then
    is history before the harvest began, and whatever lands later can be told apart from it.
    """
    if scope.startswith(SWEEP_SCOPE_PREFIX):
        raise ValueError(f"{scope!r} is a sweep marker, not a harvest scope")
    created = _insert_cursor_if_missing(
        session, source_id=source_id, scope=scope, watermark=now - lookback, now=now
    )
    if created:
        _insert_cursor_if_missing(
            session, source_id=source_id, scope=sweep_scope(scope), watermark=now, now=now
        )
    cursor = _cursor(session, source_id=source_id, scope=scope)
    assert cursor is not None
    if cursor.watermark is None:
        cursor.watermark = now - lookback
        cursor.updated_at = now
        session.flush()
    return cursor.watermark


def get_watermark(session: Session, *, source_id: int, scope: str) -> datetime | None:
    cursor = _cursor(session, source_id=source_id, scope=scope)
    return None if cursor is None else cursor.watermark


def harvest_scopes(session: Session, *, source_id: int) -> list[str]:
    """The scopes a source has cursors for (sweep markers left out)."""
    stmt = select(Cursor.scope).where(
        Cursor.source_id == source_id, Cursor.scope.not_like(f"{SWEEP_SCOPE_PREFIX}%")
    )
    return sorted(session.scalars(stmt))


def advance_watermark(
    session: Session,
    *,
    source_id: int,
    scope: str,
    now: datetime,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> datetime:
    """Move the scope's watermark as far as completed processing allows; returns it.

    W becomes the oldest incomplete (queued, or failed with attempts left) object time if
    there is one, else the newest completed object time, and never moves backwards. Call it
    under the source's lock, before listing: then no object is queued concurrently.
    """
    cursor = _cursor(session, source_id=source_id, scope=scope)
    if cursor is None or cursor.watermark is None:
        raise LookupError(f"source {source_id} has no watermark for scope {scope!r}")
    of_scope = and_(ProcessedObject.source_id == source_id, ProcessedObject.scope == scope)
    oldest_incomplete = session.scalar(
        select(func.min(ProcessedObject.object_time)).where(
            of_scope,
            or_(
                ProcessedObject.status == Status.QUEUED.value,
                and_(
                    ProcessedObject.status == Status.FAILED.value,
                    ProcessedObject.attempts < max_attempts,
                ),
            ),
        )
    )
    newest_complete = session.scalar(
        select(func.max(ProcessedObject.object_time)).where(
            of_scope, ProcessedObject.status.in_([s.value for s in COMPLETE])
        )
    )
    watermark = next_watermark(
        cursor.watermark, oldest_incomplete=oldest_incomplete, newest_complete=newest_complete
    )
    if watermark != cursor.watermark:
        cursor.watermark = watermark
        cursor.updated_at = now
        session.flush()
    return watermark


def last_sweep(session: Session, *, source_id: int, scope: str) -> datetime | None:
    """When the scope's last completed sweep started (None: never, or not since an upgrade)."""
    return get_watermark(session, source_id=source_id, scope=sweep_scope(scope))


def record_sweep(
    session: Session, *, source_id: int, scope: str, started_at: datetime, now: datetime
) -> None:
    """Remember a sweep's start, once what it found is in the ledger (never backwards)."""
    marker = sweep_scope(scope)
    if not _insert_cursor_if_missing(
        session, source_id=source_id, scope=marker, watermark=started_at, now=now
    ):
        session.execute(
            update(Cursor)
            .where(
                Cursor.source_id == source_id,
                Cursor.scope == marker,
                or_(Cursor.watermark.is_(None), Cursor.watermark < started_at),
            )
            .values(watermark=started_at, updated_at=now)
        )


def prune(
    session: Session,
    *,
    source_id: int,
    scope: str,
    lateness_window: timedelta,
    margin: timedelta = DEFAULT_PRUNE_MARGIN,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
) -> int:
    """Delete completed rows the listing can no longer reach; returns how many.

    Rows older than :func:`retention_start` (about ``W - lateness_window - margin``) go,
    except (1) incomplete rows, and (2) rows whose object arrived after the last sweep
    started (less ``clock_skew``): the next sweep reads "not in the ledger and arrived
    since I last looked" as "never seen", so those rows must outlive it.
    """
    watermark = get_watermark(session, source_id=source_id, scope=scope)
    if watermark is None:
        return 0
    conditions = [
        ProcessedObject.source_id == source_id,
        ProcessedObject.scope == scope,
        ProcessedObject.status.in_([s.value for s in COMPLETE]),
        ProcessedObject.object_time
        < retention_start(watermark, lateness_window=lateness_window, margin=margin),
    ]
    swept = last_sweep(session, source_id=source_id, scope=scope)
    if swept is not None:
        conditions.append(
            or_(
                ProcessedObject.last_modified.is_(None),
                ProcessedObject.last_modified <= swept - clock_skew,
            )
        )
    result = session.execute(
        delete(ProcessedObject).where(*conditions).execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount
