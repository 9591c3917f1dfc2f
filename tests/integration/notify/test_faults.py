"""Faults: a receiver down then up, slow beyond the timeout, answering 429 with Retry-After,
a worker killed mid-send; deliveries too old are dead; a flood becomes a digest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy.orm import Session, sessionmaker

from harvester.db.notify_models import DestinationRecord
from tests.conftest import FixedClock, wait_until
from tests.integration.notify.helpers import (
    add_destination,
    attempts,
    outbox,
    run_drain,
    stop_logging,
    store,
)
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration

INTERVAL = timedelta(seconds=30)  # the dispatch interval the drains are spaced by


def _many(count: int) -> list:  # type: ignore[type-arg]
    base = stop_logging()
    return [
        msgspec.structs.replace(base, id=f"an-{i:016d}", dedup_key=f"{i:032x}")
        for i in range(count)
    ]


def _ids(receiver: Receiver) -> Counter[str]:
    return Counter(r.headers["X-Harvester-Delivery"] for r in receiver.received)


def test_a_receiver_down_for_ten_minutes_gets_everything_within_a_minute_of_coming_back(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(
        sessions, clock, name="hook", type="webhook", url=receiver.url, timeout=timedelta(seconds=2)
    )
    port = receiver.port
    receiver.stop()
    store(sessions, clock, *_many(25))
    tries_while_down = 0
    for _ in range(20):  # ten minutes of drains, every dispatch interval
        result = run_drain(sessions, clock)
        assert result.sent == 0
        tries_while_down += result.outcomes[("hook", "failed")]
        clock.advance(INTERVAL)
    # One probe per drain at most while it is down, not one per pending delivery.
    assert 1 <= tries_while_down <= 20
    back = Receiver(port=port).start()
    try:
        came_back = clock()
        for _ in range(2):
            run_drain(sessions, clock)
            clock.advance(INTERVAL)
        assert clock() - came_back <= timedelta(minutes=1)
        ids = _ids(back)
        assert len(ids) == 25
        assert set(ids.values()) == {1}  # each delivery id once
        assert {r.delivery_id for r in outbox(sessions)} == set(ids)
        assert {r.status for r in outbox(sessions)} == {"sent"}
    finally:
        back.stop()


def test_a_slow_receiver_times_out_and_the_retry_keeps_the_delivery_id(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(
        sessions, clock, name="hook", type="webhook", url=receiver.url, timeout=timedelta(seconds=1)
    )
    slow = {"delay": 2.0}
    receiver.answer = lambda _r: (200, {}, b"ok", slow["delay"])
    store(sessions, clock, stop_logging())
    result = run_drain(sessions, clock)
    assert result.outcomes[("hook", "timeout")] == 1
    (attempt,) = attempts(sessions)
    assert (attempt.outcome, attempt.http_status) == ("timeout", None)
    assert "no answer within 1s" in (attempt.error or "")
    assert attempt.latency_seconds >= 1.0
    (row,) = outbox(sessions)
    assert row.status == "pending"
    slow["delay"] = 0.0
    clock.advance(INTERVAL)
    assert run_drain(sessions, clock).sent == 1
    wait_until(lambda: len(receiver.received) == 2, timeout=5, what="the slow answer to finish")
    # The receiver saw the delivery twice (the first answer came too late): same id both times.
    assert set(_ids(receiver)) == {row.delivery_id}


def test_429_with_retry_after_pauses_the_destination_that_long(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(sessions, clock, name="hook", type="webhook", url=receiver.url)
    answers = iter([(429, {"Retry-After": "120"}, b"slow down", 0.0)])
    receiver.answer = lambda _r: next(answers, (200, {}, b"ok", 0.0))
    store(sessions, clock, *_many(3))
    result = run_drain(sessions, clock)
    assert result.outcomes[("hook", "throttled")] == 1
    assert result.sent == 0  # the others wait: the receiver asked for a pause
    with sessions() as session:
        record = session.get(DestinationRecord, "hook")
        assert record is not None
        assert record.paused_until == clock() + timedelta(seconds=120)
    clock.advance(timedelta(seconds=60))
    assert run_drain(sessions, clock).outcomes == Counter()
    assert len(receiver.received) == 1
    clock.advance(timedelta(seconds=61))
    assert run_drain(sessions, clock).sent == 3
    assert [a.http_status for a in attempts(sessions)] == [429, 200, 200, 200]


_WORKER = """
import sys
from datetime import UTC, datetime
from harvester.db.engine import make_engine
from harvester.notify.deliver import drain
from harvester.notify.senders import SendContext
from sqlalchemy.orm import sessionmaker
from tests.integration.notify.helpers import BOX
sessions = sessionmaker(make_engine(sys.argv[1]), expire_on_commit=False)
now = datetime.fromisoformat(sys.argv[2])
drain(sessions, box=BOX, clock=lambda: now, context=lambda n: SendContext(now=n))
"""


def test_a_worker_killed_mid_send_causes_one_resend_with_the_same_delivery_id(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(
        sessions,
        clock,
        name="hook",
        type="webhook",
        url=receiver.url,
        timeout=timedelta(seconds=60),
    )
    store(sessions, clock, stop_logging())
    (row,) = outbox(sessions)
    hold = {"delay": 30.0}
    receiver.answer = lambda _r: (200, {}, b"ok", hold["delay"])
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, url, clock().isoformat()],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        wait_until(lambda: receiver.started, timeout=30, what="the worker to start sending")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    hold["delay"] = 0.0
    (claimed,) = outbox(sessions)
    assert claimed.status == "pending"
    assert claimed.claimed_until is not None
    # Before the lease ends, nobody sends it again (the worker might still be alive).
    clock.advance(timedelta(minutes=4))
    assert run_drain(sessions, clock).outcomes == Counter()
    clock.advance(timedelta(minutes=2))
    assert run_drain(sessions, clock).sent == 1
    assert [r.headers["X-Harvester-Delivery"] for r in receiver.started] == [row.delivery_id] * 2
    (sent,) = outbox(sessions)
    assert sent.status == "sent"


def test_deliveries_older_than_max_age_are_dead_and_counted(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(
        sessions, clock, name="hook", type="webhook", url=receiver.url, max_age=timedelta(hours=1)
    )
    receiver.answer = lambda _r: (500, {}, b"broken", 0.0)
    store(sessions, clock, *_many(2))
    assert run_drain(sessions, clock).outcomes[("hook", "failed")] == 1
    clock.advance(timedelta(hours=1, minutes=1))
    result = run_drain(sessions, clock)
    assert result.outcomes[("hook", "dead")] == 2
    assert result.sent == 0
    rows = outbox(sessions)
    assert {r.status for r in rows} == {"dead"}
    assert all("gave up after max_age" in (r.last_error or "") for r in rows)
    assert any("HTTP 500" in (r.last_error or "") for r in rows)


def test_beyond_the_rate_limit_the_rest_goes_as_one_digest(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(sessions, clock, name="hook", type="webhook", url=receiver.url, rate_limit=3)
    store(sessions, clock, *_many(10))
    result = run_drain(sessions, clock)
    assert result.sent == 3
    assert result.outcomes[("hook", "digested")] == 8
    bodies = [r.json() for r in receiver.received]
    assert [b["kind"] for b in bodies] == ["anomaly", "anomaly", "digest"]
    digest = bodies[-1]
    assert digest["count"] == 8
    assert len({f["delivery_id"] for f in digest["findings"]}) == 8
    assert digest["event"] == "digest"
    # Within the same minute the budget is spent: the next findings wait, then go.
    store(sessions, clock, *_many(12)[10:])
    assert run_drain(sessions, clock).sent == 0
    clock.advance(timedelta(minutes=1, seconds=1))
    assert run_drain(sessions, clock).sent == 2


def test_two_workers_draining_at_once_send_each_delivery_once(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(sessions, clock, name="hook", type="webhook", url=receiver.url)
    receiver.answer = lambda _r: (200, {}, b"ok", 0.05)
    store(sessions, clock, *_many(12))
    barrier = threading.Barrier(2)
    results = []

    def worker() -> None:
        barrier.wait()
        results.append(run_drain(sessions, clock))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.sent for r in results) == 12
    assert len(_ids(receiver)) == 12
    assert set(_ids(receiver).values()) == {1}
