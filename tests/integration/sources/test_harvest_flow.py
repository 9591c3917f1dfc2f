"""list_new_objects, sweep and backfill over the SQL ledger (SQLite and PostgreSQL) and a
fake bucket: the I/O layer wired to the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from harvester.db.models import Cursor
from harvester.settings import load_settings
from harvester.sources.layouts import cloudtrail_scope, eks_scope
from harvester.sources.ledger import (
    Status,
    WorkItem,
    WorkReason,
    get_entry,
    get_watermark,
    last_sweep,
    mark_done,
    mark_queued,
    sweep_scope,
)
from harvester.sources.listing import (
    ListingPolicy,
    backfill,
    list_new_objects,
    sweep,
)
from tests.conftest import FixedClock
from tests.unit.sources.fakes import ACCOUNT, FakeBucket, add_source, ct_key, eks_key

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
LOC = cloudtrail_scope("", account_id=ACCOUNT, region="us-east-1")
POLICY = ListingPolicy(
    lateness_window=timedelta(hours=1), first_harvest_lookback=timedelta(hours=2)
)


class Harness:
    def __init__(self, session: Session, *, location=LOC, policy=POLICY) -> None:  # type: ignore[no-untyped-def]
        self.session = session
        self.location = location
        self.policy = policy
        self.bucket = FakeBucket()
        self.clock = FixedClock(T0)
        self.source_id = add_source(session, kind=location.kind.value, cluster=location.cluster)

    def arrive(self, key: str, *, after: timedelta = timedelta(0)) -> str:
        self.bucket.put(key, at=self.clock() - after)
        return key

    def harvest(self, *, finish: bool = True) -> list[WorkItem]:
        plan = list_new_objects(
            self.session,
            self.bucket,
            source_id=self.source_id,
            location=self.location,
            policy=self.policy,
            clock=self.clock,
        )
        mark_queued(self.session, source_id=self.source_id, objects=plan.work, now=self.clock())
        if finish:
            self.finish(plan.work)
        self.session.commit()
        return plan.work

    def finish(self, items: list[WorkItem]) -> None:
        for item in items:
            mark_done(
                self.session,
                source_id=self.source_id,
                key=item.key,
                etag=item.etag,
                events=1,
                bytes=1,
                sha256="0" * 64,
                now=self.clock(),
            )
        self.session.commit()

    def sweep(self):  # type: ignore[no-untyped-def]
        report = sweep(
            self.session,
            self.bucket,
            source_id=self.source_id,
            location=self.location,
            policy=self.policy,
            clock=self.clock,
        )
        self.session.commit()
        return report


@pytest.fixture
def h(db_session: Session) -> Harness:
    return Harness(db_session)


def test_first_harvest_looks_back_and_nothing_is_listed_twice(h: Harness) -> None:
    old = h.arrive(ct_key(T0 - timedelta(hours=3, minutes=5)))  # before lookback + window
    inside = [h.arrive(ct_key(T0 - timedelta(minutes=m), unique=f"u{m}")) for m in (170, 90, 5)]
    work = h.harvest(finish=False)
    assert [w.key for w in work] == sorted(inside)
    assert old not in [w.key for w in work]
    assert get_watermark(h.session, source_id=h.source_id, scope="us-east-1") == T0 - timedelta(
        hours=2
    )
    # In flight: not handed out again.
    h.clock.advance(timedelta(minutes=5))
    assert h.harvest() == []
    h.finish(work)
    h.clock.advance(timedelta(minutes=5))
    assert h.harvest() == []
    assert get_watermark(h.session, source_id=h.source_id, scope="us-east-1") == T0 - timedelta(
        minutes=5
    )


def test_an_out_of_order_arrival_within_the_window_is_found(h: Harness) -> None:
    h.arrive(ct_key(T0 - timedelta(minutes=10), unique="b"))
    h.harvest()
    # An earlier-named file lands after a later one was processed.
    h.clock.advance(timedelta(minutes=50))
    late = h.arrive(ct_key(T0 - timedelta(minutes=30), unique="a"))
    h.arrive(ct_key(T0 + timedelta(minutes=40), unique="c"))
    assert sorted(w.key for w in h.harvest()) == sorted(
        [late, ct_key(T0 + timedelta(minutes=40), unique="c")]
    )


def test_a_dead_worker_is_redone_then_given_up_and_reported(db_session: Session) -> None:
    h = Harness(
        db_session,
        policy=ListingPolicy(
            lateness_window=timedelta(hours=1),
            requeue_timeout=timedelta(minutes=30),
            max_attempts=2,
        ),
    )
    key = h.arrive(ct_key(T0 - timedelta(minutes=10)))
    assert [w.reason for w in h.harvest(finish=False)] == [WorkReason.NEW]
    h.clock.advance(timedelta(minutes=31))
    assert [w.reason for w in h.harvest(finish=False)] == [WorkReason.REQUEUE]
    h.clock.advance(timedelta(minutes=31))
    plan = list_new_objects(
        h.session, h.bucket, source_id=h.source_id, location=LOC, policy=h.policy, clock=h.clock
    )
    assert plan.work == []
    assert [e.key for e in plan.exhausted] == [key]
    entry = get_entry(h.session, source_id=h.source_id, key=key, etag=h.bucket.objects[key].etag)
    assert entry is not None
    assert (entry.status, entry.attempts) == (Status.FAILED, 2)
    assert entry.error is not None
    assert "gave up" in entry.error
    # Given up, it no longer holds the watermark.
    h.arrive(ct_key(T0 + timedelta(minutes=50), unique="next"))
    h.harvest()
    h.clock.advance(timedelta(minutes=1))
    h.harvest()
    assert get_watermark(h.session, source_id=h.source_id, scope="us-east-1") == T0 + timedelta(
        minutes=50
    )


def test_an_overwritten_object_is_new_work(h: Harness) -> None:
    key = h.arrive(ct_key(T0 - timedelta(minutes=10)))
    h.harvest()
    h.bucket.put(key, at=T0, body="rewritten")
    h.clock.advance(timedelta(minutes=5))
    assert [(w.key, w.reason) for w in h.harvest()] == [(key, WorkReason.CHANGED)]


def test_eks_hour_folders_across_midnight(db_session: Session) -> None:
    loc = eks_scope("", account_id=ACCOUNT, cluster="prod")
    h = Harness(db_session, location=loc)
    h.clock = FixedClock(datetime(2026, 1, 1, 0, 20, tzinfo=UTC))
    keys = [
        h.arrive(eks_key(datetime(2025, 12, 31, 23, 10, tzinfo=UTC), stream="b")),
        h.arrive(eks_key(datetime(2025, 12, 31, 23, 50, tzinfo=UTC), stream="a")),
        h.arrive(eks_key(datetime(2026, 1, 1, 0, 5, tzinfo=UTC), stream="a")),
    ]
    assert sorted(w.key for w in h.harvest()) == sorted(keys)
    assert all(w.scope == "" for w in h.harvest())
    assert get_watermark(h.session, source_id=h.source_id, scope="") == datetime(
        2026, 1, 1, 0, 5, tzinfo=UTC
    )


# --- the sweep ------------------------------------------------------------------------------


def _age(h: Harness, hours: int) -> None:
    """Keep harvesting on-time objects for ``hours``, so the watermark moves on."""
    for i in range(hours * 4):
        h.clock.advance(timedelta(minutes=15))
        h.arrive(ct_key(h.clock() - timedelta(minutes=5), unique=f"bg{i}"))
        h.harvest()


def test_a_late_object_within_the_margin_is_found_by_the_sweep(h: Harness) -> None:
    h.harvest()  # the scope starts now, with its sweep marker
    _age(h, 4)
    # Named 3 h ago, landed just now: 3 h late, beyond the 1 h window.
    late = h.arrive(ct_key(h.clock() - timedelta(hours=3), unique="late"))
    assert h.harvest() == []  # the regular listing has passed it
    report = h.sweep()
    assert [(w.key, w.reason) for w in report.late] == [(late, WorkReason.LATE)]
    assert (report.unknown, report.unknown_samples) == (0, [])
    entry = get_entry(h.session, source_id=h.source_id, key=late, etag=h.bucket.objects[late].etag)
    assert entry is not None
    assert entry.status is Status.QUEUED  # the sweep queued it in the same transaction
    assert last_sweep(h.session, source_id=h.source_id, scope="us-east-1") == report.started_at
    # Next sweep: known now, and nothing else to find.
    h.finish(report.found)
    h.clock.advance(timedelta(hours=3))
    again = h.sweep()
    assert (again.found, again.unknown) == ([], 0)


def test_a_late_object_older_than_the_ledger_keeps_is_still_found(h: Harness) -> None:
    h.harvest()
    _age(h, 30)
    h.sweep()
    h.harvest()  # prunes what arrived before that sweep: rows from 28 h ago are gone now
    late = h.arrive(ct_key(h.clock() - timedelta(hours=28), unique="late"))
    h.clock.advance(timedelta(minutes=30))
    report = h.sweep()
    assert [w.key for w in report.late] == [late]
    assert report.unknown == 0
    assert report.previously_seen > 0  # the pruned, processed ones: accounted for, not refound


def test_what_was_ahead_of_the_listing_at_a_sweep_is_queued_by_it(h: Harness) -> None:
    h.harvest()
    _age(h, 2)
    # 90 min late, so beyond the window; a sweep runs before the next harvest, when it is
    # still within the listing's reach.
    t = h.clock() - timedelta(minutes=50)
    key = h.arrive(ct_key(t, unique="ahead"))
    report = h.sweep()
    assert [(w.key, w.reason) for w in report.found] == [(key, WorkReason.NEW)]


def test_what_cannot_be_proven_is_reported(h: Harness) -> None:
    h.harvest()
    _age(h, 30)
    # A scope from before sweeps existed (or whose marker was lost): no previous sweep.
    h.session.execute(delete(Cursor).where(Cursor.scope == sweep_scope("us-east-1")))
    h.session.commit()
    ancient = h.arrive(
        ct_key(h.clock() - timedelta(hours=40), unique="lost"), after=timedelta(hours=20)
    )
    report = h.sweep()
    assert report.previous_sweep is None
    assert ancient in report.unknown_samples
    # Everything else of those hours was done and pruned: also unprovable, also reported.
    assert report.unknown >= 1
    assert ancient not in [w.key for w in report.found]
    # The sweep recorded itself: the next one can prove what lands from now on.
    h.clock.advance(timedelta(hours=1))
    newer = h.arrive(ct_key(h.clock() - timedelta(hours=40), unique="newer"))
    again = h.sweep()
    assert [w.key for w in again.late] == [newer]
    assert again.unknown == 0


def test_sweep_counts_skipped_keys(h: Harness) -> None:
    h.harvest()
    h.arrive(ct_key(T0 - timedelta(minutes=10)).replace("_a1.json.gz", "_a1.json.gz.tmp"))
    h.bucket.put(ct_key(T0 - timedelta(minutes=5), unique="empty"), at=T0, size=0)
    report = h.sweep()
    assert report.skipped.counts == {"unrecognised": 1, "zero-byte": 1}


# --- backfill -------------------------------------------------------------------------------


def test_backfill_returns_done_objects_and_requeue_restarts_them(h: Harness) -> None:
    for m in range(0, 120, 10):
        h.arrive(ct_key(T0 - timedelta(minutes=m), unique=f"u{m}"))
    h.harvest()
    result = backfill(
        h.bucket,
        locations=[LOC],
        since=T0 - timedelta(minutes=60),
        until=T0 - timedelta(minutes=30),
    )
    assert [w.object_time for w in result.objects] == [
        T0 - timedelta(minutes=m) for m in (60, 50, 40, 30)
    ]
    mark_queued(h.session, source_id=h.source_id, objects=result.objects, now=h.clock())
    first = result.objects[0]
    entry = get_entry(h.session, source_id=h.source_id, key=first.key, etag=first.etag)
    assert entry is not None
    assert (entry.status, entry.attempts) == (Status.QUEUED, 1)


def test_policy_from_settings() -> None:
    settings = load_settings({}, lateness_window="30m", first_harvest_lookback="6h")
    policy = ListingPolicy.from_settings(settings, max_attempts=3)
    assert (policy.lateness_window, policy.first_harvest_lookback, policy.max_attempts) == (
        timedelta(minutes=30),
        timedelta(hours=6),
        3,
    )
