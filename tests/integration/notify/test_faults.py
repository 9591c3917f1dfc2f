"""Faults: a receiver down then up, slow beyond the timeout, answering 429 with Retry-After,
a worker killed mid-send, the database restarting mid-drain; deliveries too old are dead; a
flood becomes a digest."""

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
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harvester.db.engine import normalize_url
from harvester.db.notify_models import DestinationRecord
from harvester.notify.deliver import DrainResult, Policy
from tests.conftest import POSTGRES_URL, FixedClock, wait_until
from tests.integration.notify.helpers import (
    add_destination,
    attempts,
    outbox,
    run_drain,
    stop_logging,
    store,
)
from tests.integration.notify.receiver import Answer, Received, Receiver

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


def _restart_during_first_send(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver, policy: Policy
) -> DrainResult | Exception:
    """Drain while the database restarts: it goes away while the first send waits for its
    answer, the answer comes while it refuses connections, and it comes back once the drain
    has met it down (or, with a short ``policy.db_outage``, once the drain has given up).

    The restart is emulated on this run's own database, so other tests keep theirs: new
    connections refused, every open one terminated, then connections allowed again.
    """
    engine = sessions.kw["bind"]
    database = engine.url.database
    admin = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    refused: list[ExceptionContext] = []

    def note(context: ExceptionContext) -> None:
        refused.append(context)

    event.listen(engine, "handle_error", note)
    down = threading.Event()

    def answer(_request: Received) -> Answer:
        if len(receiver.started) == 1:
            down.wait(timeout=10)  # an event, set below once the database is gone
        return (200, {}, b"ok", 0.0)

    receiver.answer = answer
    results: list[DrainResult | Exception] = []

    def drainer() -> None:
        try:
            results.append(run_drain(sessions, clock, policy))
        except Exception as exc:  # noqa: BLE001  the caller asserts what it expects
            results.append(exc)

    thread = threading.Thread(target=drainer)
    try:
        thread.start()
        wait_until(lambda: receiver.started, timeout=10, what="the drain to start sending")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar()
        assert killed  # the drain's pooled connections
        down.set()
        wait_until(lambda: refused, timeout=10, what="the drain to meet the database down")
        if policy.db_outage < timedelta(seconds=1):
            wait_until(lambda: results, timeout=10, what="the drain to give up on the database")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        event.remove(engine, "handle_error", note)
        down.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    (result,) = results
    return result


def _each_sent_and_recorded(sessions: sessionmaker[Session], receiver: Receiver) -> Counter[str]:
    """Every row sent, none claimed, a sent attempt recorded per delivery; the receipts."""
    ids = _ids(receiver)
    rows = outbox(sessions)
    assert {r.delivery_id for r in rows} == set(ids)  # nothing lost
    assert {r.status for r in rows} == {"sent"}
    assert all(r.claimed_until is None for r in rows)
    recorded = Counter(a.delivery_id for a in attempts(sessions) if a.outcome == "sent")
    assert recorded == Counter(set(ids))
    return ids


@pytest.mark.parametrize("sessions", ["postgresql"], indirect=True)  # SQLite has no server
def test_a_database_restart_mid_drain_loses_nothing_and_sends_each_delivery_once(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(sessions, clock, name="hook", type="webhook", url=receiver.url)
    store(sessions, clock, *_many(5))
    result = _restart_during_first_send(sessions, clock, receiver, Policy())
    # The drain waited for the database, recorded the send whose answer came while it was
    # down (not resent), and went on with the rest.
    assert isinstance(result, DrainResult), result
    assert result.sent == 5
    clock.advance(INTERVAL)
    assert run_drain(sessions, clock).outcomes == Counter()
    ids = _each_sent_and_recorded(sessions, receiver)
    assert len(ids) == 5
    assert set(ids.values()) == {1}  # each delivery id once
    assert [r.attempts for r in outbox(sessions)] == [1] * 5


@pytest.mark.parametrize("sessions", ["postgresql"], indirect=True)
def test_a_database_down_longer_than_the_drain_waits_resends_only_the_interrupted_send(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    add_destination(sessions, clock, name="hook", type="webhook", url=receiver.url)
    store(sessions, clock, *_many(5))
    short = Policy(db_outage=timedelta(seconds=0.5))
    result = _restart_during_first_send(sessions, clock, receiver, short)
    assert isinstance(result, OperationalError), result  # given up: the task fails, visibly
    first = receiver.started[0].headers["X-Harvester-Delivery"]
    assert set(_ids(receiver)) == {first}  # nothing more sent without a database to record it
    # The claims stand until their lease ends (another worker may be sending), then go.
    clock.advance(INTERVAL)
    assert run_drain(sessions, clock).outcomes == Counter()
    clock.advance(Policy().lease)
    assert run_drain(sessions, clock).sent == 5
    # Recorded: one sent attempt each; the interrupted send's went down with the database.
    ids = _each_sent_and_recorded(sessions, receiver)
    # The one send interrupted between the receiver's answer and its commit is sent again,
    # with the same delivery id (a receiver de-duplicates by it); every other exactly once.
    assert {d: n for d, n in ids.items() if n > 1} == {first: 2}
    assert len(ids) == 5
