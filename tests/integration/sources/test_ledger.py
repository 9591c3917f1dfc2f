"""The SQL ledger and cursors on SQLite and PostgreSQL (the ``db_session`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from harvester.db.models import Cursor, ProcessedObject
from harvester.sources.ledger import (
    LedgerEntry,
    Status,
    WorkItem,
    WorkReason,
    advance_watermark,
    ensure_cursor,
    failed_entries,
    get_entry,
    get_watermark,
    harvest_scopes,
    last_sweep,
    load_entries,
    mark_corrupt,
    mark_done,
    mark_failed,
    mark_queued,
    prune,
    record_sweep,
)
from tests.unit.sources.fakes import add_source, ct_key

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SCOPE = "us-east-1"


def item(
    t: datetime,
    *,
    unique: str = "a",
    etag: str = "e1",
    scope: str = SCOPE,
    arrived: datetime | None = None,
) -> WorkItem:
    region = scope or "us-east-1"
    return WorkItem(
        key=ct_key(t, unique=unique, region=region),
        etag=etag,
        scope=scope,
        object_time=t,
        last_modified=arrived or t + timedelta(minutes=5),
        size=100,
        reason=WorkReason.NEW,
    )


def row(session: Session, source_id: int, w: WorkItem) -> LedgerEntry:
    found = get_entry(session, source_id=source_id, key=w.key, etag=w.etag)
    assert found is not None
    return found


def rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ProcessedObject)) or 0


@pytest.fixture
def source_id(db_session: Session) -> int:
    return add_source(db_session)


# --- recording ------------------------------------------------------------------------------


def test_mark_queued_inserts_and_counts_dispatches(db_session: Session, source_id: int) -> None:
    w = item(NOW - timedelta(minutes=20))
    assert mark_queued(db_session, source_id=source_id, objects=[w, w], now=NOW) == 1
    first = row(db_session, source_id, w)
    assert (first.status, first.attempts, first.object_time, first.scope) == (
        Status.QUEUED,
        1,
        w.object_time,
        SCOPE,
    )
    assert first.last_modified == w.last_modified
    later = NOW + timedelta(hours=1)
    mark_queued(db_session, source_id=source_id, objects=[w], now=later)
    again = row(db_session, source_id, w)
    assert (again.attempts, again.updated_at) == (2, later)
    assert rows(db_session) == 1


def test_requeuing_a_completed_row_restarts_its_attempts(
    db_session: Session, source_id: int
) -> None:
    w = item(NOW - timedelta(minutes=20))
    mark_queued(db_session, source_id=source_id, objects=[w], now=NOW)
    mark_queued(db_session, source_id=source_id, objects=[w], now=NOW)
    mark_done(
        db_session,
        source_id=source_id,
        key=w.key,
        etag=w.etag,
        events=3,
        bytes=10,
        sha256="ab" * 32,
        now=NOW,
    )
    mark_queued(db_session, source_id=source_id, objects=[w], now=NOW)
    assert (row(db_session, source_id, w).status, row(db_session, source_id, w).attempts) == (
        Status.QUEUED,
        1,
    )


def test_mark_done_is_idempotent(db_session: Session, source_id: int) -> None:
    w = item(NOW - timedelta(minutes=20))
    mark_queued(db_session, source_id=source_id, objects=[w], now=NOW)
    for _ in range(2):
        mark_done(
            db_session,
            source_id=source_id,
            key=w.key,
            etag=f'"{w.etag}"',
            events=7,
            bytes=1234,
            sha256="f" * 64,
            now=NOW + timedelta(minutes=1),
        )
    db_session.commit()
    stored = db_session.scalars(select(ProcessedObject)).one()
    assert (stored.status, stored.events, stored.bytes, stored.sha256, stored.attempts) == (
        "done",
        7,
        1234,
        "f" * 64,
        1,
    )
    assert stored.etag == "e1"
    assert stored.first_seen_at == NOW


def test_mark_done_without_a_queued_row_reads_the_key(db_session: Session, source_id: int) -> None:
    t = datetime(2025, 12, 31, 23, 55, tzinfo=UTC)
    key = ct_key(t, region="us-gov-west-1")
    mark_done(
        db_session,
        source_id=source_id,
        key=key,
        etag="x",
        events=1,
        bytes=1,
        sha256="0" * 64,
        now=NOW,
    )
    stored = get_entry(db_session, source_id=source_id, key=key, etag="x")
    assert stored is not None
    assert (stored.object_time, stored.scope, stored.status) == (t, "us-gov-west-1", Status.DONE)


def test_recording_an_unparseable_key_needs_its_identity(
    db_session: Session, source_id: int
) -> None:
    with pytest.raises(ValueError, match="object_time"):
        mark_failed(db_session, source_id=source_id, key="junk/key", etag="x", error="e", now=NOW)
    mark_failed(
        db_session,
        source_id=source_id,
        key="junk/key",
        etag="x",
        error="e",
        now=NOW,
        object_time=NOW,
        scope="",
    )
    assert rows(db_session) == 1


def test_failures_never_downgrade_completed_rows(db_session: Session, source_id: int) -> None:
    done, corrupt = item(NOW - timedelta(minutes=20)), item(NOW - timedelta(minutes=10), unique="b")
    mark_queued(db_session, source_id=source_id, objects=[done, corrupt], now=NOW)
    mark_done(
        db_session,
        source_id=source_id,
        key=done.key,
        etag=done.etag,
        events=1,
        bytes=1,
        sha256="0" * 64,
        now=NOW,
    )
    mark_corrupt(
        db_session,
        source_id=source_id,
        key=corrupt.key,
        etag=corrupt.etag,
        error="not gzip",
        now=NOW,
    )
    later = NOW + timedelta(minutes=5)
    mark_failed(db_session, source_id=source_id, key=done.key, etag=done.etag, error="x", now=later)
    mark_corrupt(
        db_session, source_id=source_id, key=done.key, etag=done.etag, error="x", now=later
    )
    mark_failed(
        db_session, source_id=source_id, key=corrupt.key, etag=corrupt.etag, error="x", now=later
    )
    db_session.expire_all()
    assert row(db_session, source_id, done).status is Status.DONE
    assert row(db_session, source_id, done).error is None
    assert (
        row(db_session, source_id, corrupt).status,
        row(db_session, source_id, corrupt).error,
    ) == (
        Status.CORRUPT,
        "not gzip",
    )


def test_done_overrides_a_failure_and_clears_its_error(db_session: Session, source_id: int) -> None:
    w = item(NOW - timedelta(minutes=20))
    mark_queued(db_session, source_id=source_id, objects=[w], now=NOW)
    mark_failed(db_session, source_id=source_id, key=w.key, etag=w.etag, error="throttled", now=NOW)
    assert row(db_session, source_id, w).status is Status.FAILED
    mark_done(
        db_session,
        source_id=source_id,
        key=w.key,
        etag=w.etag,
        events=1,
        bytes=1,
        sha256="0" * 64,
        now=NOW,
    )
    db_session.expire_all()
    assert (row(db_session, source_id, w).status, row(db_session, source_id, w).error) == (
        Status.DONE,
        None,
    )


def test_two_versions_of_a_key_are_two_rows(db_session: Session, source_id: int) -> None:
    v1, v2 = item(NOW, etag="v1"), item(NOW, etag="v2")
    mark_queued(db_session, source_id=source_id, objects=[v1, v2], now=NOW)
    assert rows(db_session) == 2


def test_many_objects_are_queued_in_chunks(db_session: Session, source_id: int) -> None:
    items = [item(NOW - timedelta(minutes=i), unique=f"u{i}") for i in range(950)]
    assert mark_queued(db_session, source_id=source_id, objects=items, now=NOW) == 950
    assert rows(db_session) == 950
    loaded = load_entries(db_session, source_id=source_id, scope=SCOPE, keys=[i.key for i in items])
    assert len(loaded) == 950


def test_load_entries_brings_listed_keys_and_incomplete_rows(
    db_session: Session, source_id: int
) -> None:
    listed = item(NOW, unique="listed")
    unlisted_failed = item(NOW - timedelta(days=2), unique="f")
    unlisted_done = item(NOW - timedelta(days=2), unique="d")
    other_scope = item(NOW, unique="o", scope="eu-west-1")
    mark_queued(
        db_session,
        source_id=source_id,
        objects=[listed, unlisted_failed, unlisted_done, other_scope],
        now=NOW,
    )
    mark_failed(
        db_session, source_id=source_id, key=unlisted_failed.key, etag="e1", error="x", now=NOW
    )
    mark_done(
        db_session,
        source_id=source_id,
        key=listed.key,
        etag="e1",
        events=0,
        bytes=0,
        sha256="0" * 64,
        now=NOW,
    )
    mark_done(
        db_session,
        source_id=source_id,
        key=unlisted_done.key,
        etag="e1",
        events=0,
        bytes=0,
        sha256="0" * 64,
        now=NOW,
    )
    loaded = load_entries(db_session, source_id=source_id, scope=SCOPE, keys=[listed.key])
    assert sorted(e.key for e in loaded) == sorted([listed.key, unlisted_failed.key])


def test_failed_entries_lists_only_exhausted_failures(db_session: Session, source_id: int) -> None:
    a, b = item(NOW, unique="a"), item(NOW, unique="b")
    for _ in range(3):
        mark_queued(db_session, source_id=source_id, objects=[a], now=NOW)
    mark_queued(db_session, source_id=source_id, objects=[b], now=NOW)
    for w in (a, b):
        mark_failed(db_session, source_id=source_id, key=w.key, etag=w.etag, error="x", now=NOW)
    assert [e.key for e in failed_entries(db_session, source_id=source_id, max_attempts=3)] == [
        a.key
    ]


# --- cursors --------------------------------------------------------------------------------


def test_a_new_scope_starts_at_the_lookback_with_a_sweep_marker(
    db_session: Session, source_id: int
) -> None:
    w = ensure_cursor(
        db_session, source_id=source_id, scope=SCOPE, now=NOW, lookback=timedelta(hours=24)
    )
    assert w == NOW - timedelta(hours=24)
    assert last_sweep(db_session, source_id=source_id, scope=SCOPE) == NOW
    again = ensure_cursor(
        db_session,
        source_id=source_id,
        scope=SCOPE,
        now=NOW + timedelta(days=1),
        lookback=timedelta(hours=1),
    )
    assert again == w
    assert harvest_scopes(db_session, source_id=source_id) == [SCOPE]


def test_an_existing_scope_without_a_marker_does_not_get_one(
    db_session: Session, source_id: int
) -> None:
    # A cursor from before sweeps existed: inventing a marker would hide what it cannot prove.
    db_session.add(Cursor(source_id=source_id, scope=SCOPE, watermark=NOW, updated_at=NOW))
    db_session.flush()
    assert (
        ensure_cursor(
            db_session, source_id=source_id, scope=SCOPE, now=NOW, lookback=timedelta(hours=1)
        )
        == NOW
    )
    assert last_sweep(db_session, source_id=source_id, scope=SCOPE) is None


def test_a_null_watermark_is_started(db_session: Session, source_id: int) -> None:
    db_session.add(Cursor(source_id=source_id, scope=SCOPE, watermark=None, updated_at=NOW))
    db_session.flush()
    w = ensure_cursor(
        db_session, source_id=source_id, scope=SCOPE, now=NOW, lookback=timedelta(hours=2)
    )
    assert w == NOW - timedelta(hours=2)


def test_sweep_scope_names_are_refused_as_harvest_scopes(
    db_session: Session, source_id: int
) -> None:
    with pytest.raises(ValueError, match="sweep"):
        ensure_cursor(
            db_session, source_id=source_id, scope="sweep:x", now=NOW, lookback=timedelta(0)
        )


def test_record_sweep_never_moves_backwards(db_session: Session, source_id: int) -> None:
    record_sweep(db_session, source_id=source_id, scope="", started_at=NOW, now=NOW)
    record_sweep(
        db_session, source_id=source_id, scope="", started_at=NOW - timedelta(hours=1), now=NOW
    )
    db_session.expire_all()
    assert last_sweep(db_session, source_id=source_id, scope="") == NOW
    record_sweep(
        db_session, source_id=source_id, scope="", started_at=NOW + timedelta(hours=1), now=NOW
    )
    db_session.expire_all()
    assert last_sweep(db_session, source_id=source_id, scope="") == NOW + timedelta(hours=1)
    assert harvest_scopes(db_session, source_id=source_id) == []


def _start(session: Session, source_id: int, watermark: datetime) -> None:
    ensure_cursor(session, source_id=source_id, scope=SCOPE, now=watermark, lookback=timedelta(0))


def _finish(session: Session, source_id: int, w: WorkItem) -> None:
    mark_done(
        session,
        source_id=source_id,
        key=w.key,
        etag=w.etag,
        events=1,
        bytes=1,
        sha256="0" * 64,
        now=NOW,
    )


def test_watermark_moves_to_the_newest_completed_object(
    db_session: Session, source_id: int
) -> None:
    _start(db_session, source_id, NOW - timedelta(hours=2))
    a, b = (
        item(NOW - timedelta(minutes=50), unique="a"),
        item(NOW - timedelta(minutes=40), unique="b"),
    )
    mark_queued(db_session, source_id=source_id, objects=[a, b], now=NOW)
    _finish(db_session, source_id, a)
    _finish(db_session, source_id, b)
    w = advance_watermark(db_session, source_id=source_id, scope=SCOPE, now=NOW)
    assert w == b.object_time
    assert get_watermark(db_session, source_id=source_id, scope=SCOPE) == b.object_time


def test_watermark_stops_at_the_oldest_incomplete_object(
    db_session: Session, source_id: int
) -> None:
    start = NOW - timedelta(hours=2)
    _start(db_session, source_id, start)
    a, b, c = (
        item(NOW - timedelta(minutes=m), unique=u) for m, u in ((50, "a"), (40, "b"), (30, "c"))
    )
    mark_queued(db_session, source_id=source_id, objects=[a, b, c], now=NOW)
    _finish(db_session, source_id, a)
    _finish(db_session, source_id, c)
    assert advance_watermark(db_session, source_id=source_id, scope=SCOPE, now=NOW) == b.object_time
    # A retryable failure holds it too; an exhausted one does not.
    mark_failed(db_session, source_id=source_id, key=b.key, etag=b.etag, error="x", now=NOW)
    assert advance_watermark(db_session, source_id=source_id, scope=SCOPE, now=NOW) == b.object_time
    assert (
        advance_watermark(db_session, source_id=source_id, scope=SCOPE, now=NOW, max_attempts=1)
        == c.object_time
    )


def test_watermark_never_moves_backwards(db_session: Session, source_id: int) -> None:
    _start(db_session, source_id, NOW)
    old = item(NOW - timedelta(hours=5))
    mark_queued(db_session, source_id=source_id, objects=[old], now=NOW)
    assert advance_watermark(db_session, source_id=source_id, scope=SCOPE, now=NOW) == NOW
    _finish(db_session, source_id, old)
    assert advance_watermark(db_session, source_id=source_id, scope=SCOPE, now=NOW) == NOW


def test_watermark_of_another_scope_is_independent(db_session: Session, source_id: int) -> None:
    _start(db_session, source_id, NOW - timedelta(hours=2))
    other = item(NOW, scope="eu-west-1")
    mark_queued(db_session, source_id=source_id, objects=[other], now=NOW)
    _finish(db_session, source_id, other)
    assert advance_watermark(
        db_session, source_id=source_id, scope=SCOPE, now=NOW
    ) == NOW - timedelta(hours=2)
    with pytest.raises(LookupError):
        advance_watermark(db_session, source_id=source_id, scope="eu-west-1", now=NOW)


# --- pruning --------------------------------------------------------------------------------


def test_prune_drops_only_completed_rows_beyond_the_margin(
    db_session: Session, source_id: int
) -> None:
    window, margin = timedelta(hours=1), timedelta(hours=24)
    _start(db_session, source_id, NOW)
    record_sweep(db_session, source_id=source_id, scope=SCOPE, started_at=NOW, now=NOW)
    cutoff = NOW - window - margin
    old_done = item(cutoff - timedelta(minutes=1), unique="old")
    old_corrupt = item(cutoff - timedelta(minutes=2), unique="corrupt")
    old_failed = item(cutoff - timedelta(minutes=3), unique="failed")
    old_queued = item(cutoff - timedelta(minutes=4), unique="queued")
    at_cutoff = item(cutoff, unique="edge")
    objects = [old_done, old_corrupt, old_failed, old_queued, at_cutoff]
    mark_queued(db_session, source_id=source_id, objects=objects, now=NOW)
    _finish(db_session, source_id, old_done)
    _finish(db_session, source_id, at_cutoff)
    mark_corrupt(
        db_session, source_id=source_id, key=old_corrupt.key, etag="e1", error="x", now=NOW
    )
    mark_failed(db_session, source_id=source_id, key=old_failed.key, etag="e1", error="x", now=NOW)
    assert (
        prune(db_session, source_id=source_id, scope=SCOPE, lateness_window=window, margin=margin)
        == 2
    )
    left = {
        e.key
        for e in load_entries(
            db_session, source_id=source_id, scope=SCOPE, keys=[o.key for o in objects]
        )
    }
    assert left == {old_failed.key, old_queued.key, at_cutoff.key}


def test_prune_keeps_rows_that_arrived_after_the_last_sweep(
    db_session: Session, source_id: int
) -> None:
    _start(db_session, source_id, NOW)
    swept = NOW + timedelta(hours=3)
    record_sweep(db_session, source_id=source_id, scope=SCOPE, started_at=swept, now=NOW)
    t = NOW - timedelta(days=3)
    before = item(t, unique="before", arrived=swept - timedelta(minutes=16))
    after = item(t, unique="after", arrived=swept - timedelta(minutes=14))
    mark_queued(db_session, source_id=source_id, objects=[before, after], now=NOW)
    _finish(db_session, source_id, before)
    _finish(db_session, source_id, after)
    assert (
        prune(db_session, source_id=source_id, scope=SCOPE, lateness_window=timedelta(hours=1)) == 1
    )
    assert get_entry(db_session, source_id=source_id, key=after.key, etag="e1") is not None


def test_prune_without_a_watermark_does_nothing(db_session: Session, source_id: int) -> None:
    assert (
        prune(db_session, source_id=source_id, scope=SCOPE, lateness_window=timedelta(hours=1)) == 0
    )
