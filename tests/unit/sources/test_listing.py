"""The pure planners and the paging helpers, over a fake bucket: no database, no S3."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from harvester.sources.layouts import cloudtrail_scope, eks_scope
from harvester.sources.ledger import LedgerEntry, Status, WorkReason, next_watermark
from harvester.sources.listing import (
    FOREIGN,
    FUTURE,
    NOT_A_LOG,
    ListedObject,
    ListingPolicy,
    iter_objects,
    iter_prefixes,
    listing_start,
    plan_backfill,
    plan_harvest,
    plan_sweep,
)
from tests.unit.sources.fakes import ACCOUNT, FakeBucket, ct_key, eks_key

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
LOC = cloudtrail_scope("", account_id=ACCOUNT, region="us-east-1")
POLICY = ListingPolicy()


def obj(
    t: datetime,
    *,
    unique: str = "a1",
    etag: str = "e1",
    size: int = 10,
    arrived: datetime | None = None,
) -> ListedObject:
    return ListedObject(ct_key(t, unique=unique), etag, size, arrived or t + timedelta(minutes=5))


def entry(
    o: ListedObject,
    status: Status,
    *,
    attempts: int = 1,
    updated_at: datetime = NOW,
    etag: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        key=o.key,
        etag=etag or o.etag,
        scope="us-east-1",
        object_time=_time(o),
        last_modified=o.last_modified,
        status=status,
        attempts=attempts,
        updated_at=updated_at,
    )


def _time(o: ListedObject) -> datetime:
    stamp = o.key.rsplit("_", 2)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


# --- paging ---------------------------------------------------------------------------------


def test_iter_objects_pages_through_everything_in_key_order() -> None:
    bucket = FakeBucket()
    times = [NOW - timedelta(minutes=5 * i) for i in range(25)]
    for t in times:
        bucket.put(ct_key(t), at=t)
    keys = [o.key for o in iter_objects(bucket, prefix=LOC.prefix, page_size=10)]
    assert keys == sorted(ct_key(t) for t in times)
    assert len(bucket.calls) == 3
    assert bucket.calls[0]["start_after"] is None
    assert bucket.calls[1]["token"] is not None


def test_iter_objects_is_lazy() -> None:
    bucket = FakeBucket()
    for i in range(30):
        t = NOW + timedelta(minutes=i)
        bucket.put(ct_key(t), at=t)
    first = next(iter_objects(bucket, prefix=LOC.prefix, page_size=10))
    assert first.key == ct_key(NOW)
    assert len(bucket.calls) == 1


def test_iter_prefixes_pages() -> None:
    bucket = FakeBucket()
    for i in range(7):
        bucket.put(f"root/f{i}/x", at=NOW)
        bucket.put(f"root/f{i}/y", at=NOW)
    bucket.put("root/plain", at=NOW)
    assert list(iter_prefixes(bucket, prefix="root/", page_size=3)) == [
        f"root/f{i}/" for i in range(7)
    ]


# --- the watermark rule ---------------------------------------------------------------------


def test_next_watermark_rule() -> None:
    old = NOW
    later, earlier = NOW + timedelta(hours=1), NOW - timedelta(hours=1)
    assert next_watermark(old, oldest_incomplete=None, newest_complete=None) == old
    assert next_watermark(old, oldest_incomplete=None, newest_complete=later) == later
    assert next_watermark(old, oldest_incomplete=None, newest_complete=earlier) == old
    # An incomplete object holds W even if newer ones completed.
    held = NOW + timedelta(minutes=10)
    assert next_watermark(old, oldest_incomplete=held, newest_complete=later) == held
    assert next_watermark(old, oldest_incomplete=earlier, newest_complete=later) == old


# --- plan_harvest ---------------------------------------------------------------------------


def plan(listed: list[ListedObject], entries: list[LedgerEntry], **kw: object):  # type: ignore[no-untyped-def]
    return plan_harvest(
        listed,
        entries,
        location=LOC,
        watermark=NOW - timedelta(hours=1),
        now=NOW,
        policy=replace(POLICY, **kw),
    )


def test_new_objects_become_work_with_their_identity() -> None:
    a, b = obj(NOW - timedelta(minutes=20)), obj(NOW - timedelta(minutes=15), unique="b")
    result = plan([a, b], [])
    assert [(w.key, w.reason) for w in result.work] == [
        (a.key, WorkReason.NEW),
        (b.key, WorkReason.NEW),
    ]
    item = result.work[0]
    assert (item.etag, item.size, item.scope) == ("e1", 10, "us-east-1")
    assert item.object_time == NOW - timedelta(minutes=20)
    assert item.last_modified == a.last_modified
    assert result.listed == 2


def test_etags_are_compared_without_quotes() -> None:
    a = obj(NOW - timedelta(minutes=20), etag='"e1"')
    result = plan([a], [entry(a, Status.DONE, etag="e1")])
    assert result.work == []
    assert result.known == 1


@pytest.mark.parametrize("status", [Status.DONE, Status.CORRUPT])
def test_completed_objects_are_skipped(status: Status) -> None:
    a = obj(NOW - timedelta(minutes=20))
    result = plan([a], [entry(a, status)])
    assert result.work == []
    assert result.known == 1


def test_a_changed_etag_is_new_work_and_supersedes_an_incomplete_old_version() -> None:
    a = obj(NOW - timedelta(minutes=20), etag="v2")
    result = plan([a], [entry(a, Status.FAILED, etag="v1")])
    assert [(w.etag, w.reason) for w in result.work] == [("v2", WorkReason.CHANGED)]
    assert [(g.entry.etag, g.status) for g in result.give_up] == [("v1", Status.CORRUPT)]
    assert "superseded" in result.give_up[0].error


def test_recently_queued_objects_are_in_flight() -> None:
    a = obj(NOW - timedelta(minutes=20))
    result = plan([a], [entry(a, Status.QUEUED, updated_at=NOW - timedelta(minutes=29))])
    assert result.work == []
    assert result.in_flight == 1


def test_queued_objects_past_the_requeue_timeout_are_redone() -> None:
    a = obj(NOW - timedelta(minutes=20))
    result = plan([a], [entry(a, Status.QUEUED, updated_at=NOW - timedelta(minutes=30))])
    assert [(w.key, w.reason, w.size) for w in result.work] == [(a.key, WorkReason.REQUEUE, 10)]


def test_a_requeue_comes_from_the_ledger_even_when_not_listed() -> None:
    old = obj(NOW - timedelta(days=3))
    result = plan([], [entry(old, Status.QUEUED, updated_at=NOW - timedelta(hours=2))])
    assert [(w.key, w.reason, w.size) for w in result.work] == [(old.key, WorkReason.REQUEUE, None)]


def test_an_object_that_keeps_killing_workers_is_given_up() -> None:
    a = obj(NOW - timedelta(minutes=20))
    stale = NOW - timedelta(hours=1)
    result = plan([a], [entry(a, Status.QUEUED, attempts=5, updated_at=stale)])
    assert result.work == []
    assert [(g.entry.key, g.status) for g in result.give_up] == [(a.key, Status.FAILED)]
    assert "5 attempts" in result.give_up[0].error


def test_failed_objects_are_retried_until_the_bound_then_reported() -> None:
    a, b = obj(NOW - timedelta(minutes=20)), obj(NOW - timedelta(minutes=10), unique="b")
    result = plan(
        [a, b], [entry(a, Status.FAILED, attempts=4), entry(b, Status.FAILED, attempts=5)]
    )
    assert [(w.key, w.reason) for w in result.work] == [(a.key, WorkReason.RETRY)]
    assert [e.key for e in result.exhausted] == [b.key]


def test_incomplete_rows_of_other_scopes_are_left_alone() -> None:
    a = obj(NOW - timedelta(minutes=20))
    other = replace(entry(a, Status.FAILED), scope="eu-west-1")
    assert plan([], [other]).work == []


def test_skipped_keys_are_counted_by_reason_with_samples() -> None:
    t = NOW - timedelta(minutes=20)
    digest = ListedObject(
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/01/15/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_t_us-east-1_20260115T114000Z.json.gz",
        "e",
        5,
        t,
    )
    listed = [
        obj(t, size=0),
        ListedObject(f"{LOC.prefix}2026/01/15/", "e", 0, t),
        ListedObject(f"{LOC.prefix}2026/01/15/readme.txt", "e", 5, t),
        ListedObject(ct_key(t, prefix="other/"), "e", 5, t),
        digest,
        obj(NOW + timedelta(minutes=16), unique="future"),
        obj(NOW + timedelta(minutes=15), unique="skewed"),
    ]
    result = plan(listed, [], sample_size=1)
    assert result.skipped.counts == {
        "zero-byte": 1,
        "folder-marker": 1,
        "unrecognised": 1,
        FOREIGN: 1,
        NOT_A_LOG: 1,
        FUTURE: 1,
    }
    assert result.skipped.samples["unrecognised"] == [listed[2].key]
    # Exactly at now + clock skew is still taken.
    assert [w.key for w in result.work] == [listed[-1].key]
    assert result.skipped.total == 6


def test_foreign_and_non_log_keys_in_a_listing_are_counted() -> None:
    t = NOW - timedelta(minutes=20)
    eks = eks_scope("", account_id=ACCOUNT, cluster="prod")
    listed = [
        ListedObject(eks_key(t, cluster="prod"), "e", 5, t),
        ListedObject(ct_key(t), "e", 5, t),
    ]
    result = plan_harvest(listed, [], location=eks, watermark=t, now=NOW, policy=POLICY)
    assert result.skipped.counts == {NOT_A_LOG: 1}
    assert len(result.work) == 1
    listed = [ListedObject(eks_key(t, cluster="dev"), "e", 5, t)]
    result = plan_harvest(listed, [], location=eks, watermark=t, now=NOW, policy=POLICY)
    assert result.skipped.counts == {FOREIGN: 1}


def test_listing_start_is_the_watermark_less_the_window() -> None:
    w = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert listing_start(LOC, w, POLICY) == LOC.start_after(
        datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    )


# --- plan_sweep -----------------------------------------------------------------------------

W = NOW - timedelta(minutes=30)  # reach = W - 1 h = 10:30; horizon = reach - 24 h


def sweep(listed: list[ListedObject], entries: list[LedgerEntry], previous: datetime | None):  # type: ignore[no-untyped-def]
    return plan_sweep(
        listed, entries, location=LOC, watermark=W, previous_sweep=previous, now=NOW, policy=POLICY
    )


def test_sweep_knows_what_the_ledger_holds() -> None:
    a = obj(NOW - timedelta(hours=30))
    report = sweep([a], [entry(a, Status.DONE)], NOW - timedelta(hours=3))
    assert (report.known, report.found, report.unknown) == (1, [], 0)


def test_sweep_finds_a_late_arrival_since_the_previous_sweep() -> None:
    # Stamped 5 h ago, landed 1 h ago: the regular listing (from 10:30) passed it long ago.
    late = obj(NOW - timedelta(hours=5), arrived=NOW - timedelta(hours=1))
    report = sweep([late], [], NOW - timedelta(hours=3))
    assert [(w.key, w.reason) for w in report.found] == [(late.key, WorkReason.LATE)]
    assert report.late == report.found


def test_sweep_finds_an_arrival_just_inside_the_clock_skew() -> None:
    previous = NOW - timedelta(hours=3)
    late = obj(NOW - timedelta(hours=40), arrived=previous - timedelta(minutes=14))
    assert len(sweep([late], [], previous).found) == 1


def test_sweep_leaves_what_the_previous_sweep_accounted_for() -> None:
    previous = NOW - timedelta(hours=3)
    old = obj(NOW - timedelta(hours=40), arrived=previous - timedelta(minutes=16))
    report = sweep([old], [], previous)
    assert (report.previously_seen, report.found, report.unknown) == (1, [], 0)


def test_sweep_queues_what_the_regular_listing_has_not_reached_yet() -> None:
    ahead = obj(NOW - timedelta(minutes=20), arrived=NOW - timedelta(hours=4))
    report = sweep([ahead], [], NOW - timedelta(hours=3))
    assert [(w.key, w.reason) for w in report.found] == [(ahead.key, WorkReason.NEW)]
    assert report.late == []


def test_without_a_previous_sweep_the_ledger_horizon_decides() -> None:
    inside = obj(NOW - timedelta(hours=20), arrived=NOW - timedelta(hours=10))
    beyond = obj(NOW - timedelta(hours=30), unique="b", arrived=NOW - timedelta(hours=10))
    report = sweep([inside, beyond], [], None)
    assert [w.key for w in report.found] == [inside.key]
    assert report.unknown == 1
    assert report.unknown_samples == [beyond.key]


def test_sweep_counts_skipped_keys() -> None:
    t = NOW - timedelta(hours=30)
    report = sweep([obj(t, size=0), ListedObject(f"{LOC.prefix}x", "e", 1, t)], [], None)
    assert report.skipped.counts == {"zero-byte": 1, "unrecognised": 1}
    assert report.listed == 2


# --- plan_backfill --------------------------------------------------------------------------


def test_backfill_returns_every_object_in_range_and_stops_after_it() -> None:
    bucket = FakeBucket()
    times = [
        datetime(2025, 12, 31, 22, 0, tzinfo=UTC) + timedelta(minutes=10 * i) for i in range(60)
    ]
    for t in times:
        bucket.put(ct_key(t), at=t)
    since, until = datetime(2025, 12, 31, 23, 0, tzinfo=UTC), datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    listed = iter_objects(
        bucket, prefix=LOC.prefix, start_after=LOC.start_after(since), page_size=5
    )
    result = plan_backfill(listed, location=LOC, since=since, until=until)
    assert [w.object_time for w in result.objects] == [t for t in times if since <= t <= until]
    assert {w.reason for w in result.objects} == {WorkReason.BACKFILL}
    # 13 objects in range, plus the first one past it, in pages of 5: 3 calls, not 8.
    assert len(bucket.calls) == 3
