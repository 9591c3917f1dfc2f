"""The harvest engine in one process against the moto server: nothing lost, nothing doubled."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from harvester import pipeline
from harvester.batches import decode_batch
from harvester.db.models import ProcessedObject, Source
from harvester.embedded import run_cycle
from harvester.pipeline import dispatch_due, harvest_objects, harvest_source
from harvester.runtime import Runtime
from tests.conftest import FixedClock
from tests.integration.seeding import ACCOUNTS, BUCKET, REGIONS, Bucket, ct_key


def run_recording(rt: Runtime) -> Counter[str]:
    """A full cycle whose score batches are decoded and counted by event id."""
    seen: Counter[str] = Counter()
    sources: list[int] = []
    dispatch_due(rt, enqueue=lambda due: sources.extend(sid for sid, _ in due))
    for source_id in sources:
        groups: list[tuple[int, list[tuple[str, str]]]] = []
        harvest_source(
            rt,
            source_id=source_id,
            enqueue=lambda sid, objs, into=groups: into.append((sid, list(objs))),
            lease_ttl=timedelta(minutes=5),
        )
        for sid, objs in groups:
            harvest_objects(
                rt,
                source_id=sid,
                objects=objs,
                emit=lambda body, _n: seen.update(e.id for e in decode_batch(body)),
            )
    return seen


def ledger(rt: Runtime) -> Counter[str]:
    with rt.sessions() as session:
        return Counter(
            dict(
                session.execute(
                    select(ProcessedObject.status, func.count()).group_by(ProcessedObject.status)
                ).all()
            )
        )


def test_every_event_reaches_scoring_once(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    start = now() - timedelta(hours=3)
    for account in ACCOUNTS:
        for region in REGIONS:
            for step in range(3):
                bucket.put_trail(account, region, start + timedelta(minutes=20 * step))
    bucket.put_eks(ACCOUNTS[0], start, seed=1)
    bucket.put_eks(ACCOUNTS[0], start + timedelta(hours=1), seed=2)

    seen = run_recording(runtime)
    assert set(seen) == bucket.seeded.all_ids
    assert max(seen.values()) == 1
    assert ledger(runtime) == Counter({"done": len(bucket.seeded.event_ids)})

    # A second cycle a cadence later finds nothing new and sends nothing again.
    now.advance(timedelta(minutes=10))
    assert run_recording(runtime) == Counter()


def test_late_object_with_earlier_key_is_harvested(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    account, region = ACCOUNTS[1], REGIONS[0]
    first = bucket.put_trail(account, region, now() - timedelta(minutes=10))
    assert set(run_recording(runtime)) == set(bucket.seeded.event_ids[first])
    # Delivered now, but its key is 40 minutes old: earlier than what was processed.
    now.advance(timedelta(minutes=6))
    late = bucket.put_trail(account, region, now() - timedelta(minutes=46))
    assert set(run_recording(runtime)) == set(bucket.seeded.event_ids[late])


def test_corrupt_object_is_recorded_and_the_rest_harvested(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    account, region = ACCOUNTS[2], REGIONS[1]
    good = bucket.put_trail(account, region, now() - timedelta(minutes=30))
    bad = ct_key(account, region, now() - timedelta(minutes=20), "badbadbadbadbad0")
    bucket.put_raw(bad, b"\x1f\x8b\x08\x00garbage-not-gzip")
    seen = run_recording(runtime)
    assert set(seen) == set(bucket.seeded.event_ids[good])
    with runtime.sessions() as session:
        row = session.scalar(select(ProcessedObject).where(ProcessedObject.key == bad))
        assert row is not None
        assert row.status == "corrupt"
        assert "gzip" in (row.error or "")


def test_wrong_bucket_degrades_the_source_with_the_reason(runtime: Runtime, bucket: Bucket) -> None:
    with runtime.sessions.begin() as session:
        source = session.scalars(select(Source).where(Source.kind == "cloudtrail")).first()
        assert source is not None
        source.bucket = "no-such-trail-bucket"
        source_id = source.id
    result = harvest_source(
        runtime, source_id=source_id, enqueue=lambda *_: None, lease_ttl=timedelta(minutes=5)
    )
    assert result.status == "degraded"
    with runtime.sessions() as session:
        source = session.get(Source, source_id)
        assert source is not None
        assert source.health == "degraded"
        assert "no-such-trail-bucket" in (source.health_reason or "")


def test_run_cycle_scores_and_counts(runtime: Runtime, bucket: Bucket, now: FixedClock) -> None:
    for account in ACCOUNTS:
        bucket.put_trail(account, REGIONS[0], now() - timedelta(minutes=15), records=20)
    result = run_cycle(runtime)
    assert result.objects == len(ACCOUNTS)
    assert result.events == 20 * len(ACCOUNTS)
    assert result.corrupt == result.failed == 0


def test_a_runs_figures_are_recorded_as_its_objects_finish(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    def figures() -> dict[str, tuple[int, Any]]:
        with runtime.sessions() as session:
            return {
                s.account.account_id: (s.last_run_events, s.newest_object_at)
                for s in session.scalars(select(Source).where(Source.kind == "cloudtrail"))
            }

    first = now() - timedelta(minutes=15)
    for account in ACCOUNTS:
        bucket.put_trail(account, REGIONS[0], first, records=20)
    run_cycle(runtime)
    # Right after the run, not one run later: its events, and a lag to measure.
    after_first = figures()
    assert {events for events, _ in after_first.values()} == {20}
    assert all(newest is not None for _, newest in after_first.values())
    now.advance(timedelta(minutes=10))
    for account in ACCOUNTS:
        bucket.put_trail(account, REGIONS[0], now() - timedelta(minutes=5), records=7)
    run_cycle(runtime)
    after_second = figures()
    # The second run's figures only, never the two runs mixed.
    assert {events for events, _ in after_second.values()} == {7}
    # The lag is measured from the newest object done, as S3 stamped it (to the second, so
    # two runs in one second may share a stamp: compare with S3's own, not with the last run).
    listed = bucket.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    for account, (_, newest) in after_second.items():
        stamps = [o["LastModified"] for o in listed if f"/{account}/" in o["Key"]]
        assert newest is not None
        assert newest.replace(tzinfo=UTC) == max(stamps).astimezone(UTC)


def test_a_run_that_dies_between_regions_lists_them_all_next_time(
    runtime: Runtime, bucket: Bucket, now: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = ACCOUNTS[0]
    for region in REGIONS:
        bucket.put_trail(account, region, now() - timedelta(minutes=30))
    real = pipeline.list_new_objects
    calls = 0

    def dies_on_the_second_region(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("database connection dropped")
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "list_new_objects", dies_on_the_second_region)
        with pytest.raises(ConnectionError):
            run_recording(runtime)
    # The next run, once the first region's objects may be queued again and well within the
    # rediscovery interval: both regions are listed, every object is harvested.
    now.advance(timedelta(minutes=31))
    seen = run_recording(runtime)
    assert set(seen) == bucket.seeded.all_ids
    assert ledger(runtime) == Counter({"done": len(bucket.seeded.event_ids)})
