"""Objects whose messages were lost (a restarted broker, a killed worker) are queued again."""

from __future__ import annotations

from datetime import timedelta

from harvester.pipeline import harvest_source
from harvester.runtime import Runtime
from tests.conftest import FixedClock
from tests.integration.seeding import ACCOUNTS, REGIONS, Bucket


def test_lost_messages_are_requeued(runtime: Runtime, bucket: Bucket, now: FixedClock) -> None:
    key = bucket.put_trail(ACCOUNTS[0], REGIONS[0], now() - timedelta(minutes=20))
    sent: list[str] = []

    def lose(_source_id: int, _objects: object) -> None:
        return None  # the message never reaches a worker

    first = harvest_source(runtime, source_id=1, enqueue=lose, lease_ttl=timedelta(minutes=5))
    assert first.objects == 1
    now.advance(timedelta(minutes=5))
    again = harvest_source(runtime, source_id=1, enqueue=lose, lease_ttl=timedelta(minutes=5))
    assert again.objects == 0  # still in flight: not sent twice
    now.advance(runtime.settings.requeue_after)
    later = harvest_source(
        runtime,
        source_id=1,
        enqueue=lambda _sid, objects: sent.extend(k for k, _ in objects),
        lease_ttl=timedelta(minutes=5),
    )
    assert later.objects == 1
    assert sent == [key]


def test_a_run_that_died_after_discovery_does_not_hide_the_regions(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    from harvester.db.models import Cursor
    from harvester.pipeline import DISCOVERY_SCOPE

    bucket.put_trail(ACCOUNTS[0], REGIONS[0], now() - timedelta(minutes=20))
    # The marker of a fresh discovery, but no region cursor: the run died in between.
    with runtime.sessions.begin() as session:
        session.add(Cursor(source_id=1, scope=DISCOVERY_SCOPE, updated_at=now()))
    result = harvest_source(
        runtime, source_id=1, enqueue=lambda *_: None, lease_ttl=timedelta(minutes=5)
    )
    assert result.scopes == 1
    assert result.objects == 1
