"""Properties of listing + ledger together: no object is lost, none is done twice.

A fake bucket receives objects in any order (each arrival delay bounded), harvest runs and
sweeps interleave at random gaps, workers fail transiently, die after doing the work but
before recording it, or stay in flight across runs. The real planners and the real SQL
ledger (SQLite in memory) decide; the test checks every object was processed exactly once,
plus once more for each simulated death.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester.db.models import ProcessedObject
from harvester.sources.layouts import ScopeLocation, cloudtrail_scope, eks_scope
from harvester.sources.ledger import (
    WorkItem,
    WorkReason,
    ensure_cursor,
    mark_done,
    mark_failed,
    mark_queued,
)
from harvester.sources.listing import ListingPolicy, list_new_objects, sweep
from tests.conftest import FixedClock
from tests.unit.sources.fakes import ACCOUNT, FakeBucket, add_source, ct_key, eks_key, memory_engine

WINDOW = timedelta(minutes=60)
POLICY = ListingPolicy(
    lateness_window=WINDOW,
    first_harvest_lookback=timedelta(hours=3),
    requeue_timeout=timedelta(minutes=60),
    max_attempts=5,
    # Small, so that pruning happens inside a run and is part of what is tested.
    prune_margin=timedelta(minutes=20),
    clock_skew=timedelta(minutes=5),
    page_size=7,
)
# Just before a year boundary, so listings cross day, month and year folders.
T0 = datetime(2025, 12, 31, 21, 0, tzinfo=UTC)
MAX_GAP = 50  # minutes between steps: shorter than the requeue timeout


@dataclass
class Obj:
    key: str
    time: datetime
    arrival: datetime
    outcomes: deque[str]


@dataclass
class World:
    kind: str
    objects: list[Obj]
    location: ScopeLocation
    bucket: FakeBucket = field(default_factory=FakeBucket)
    clock: FixedClock = field(default_factory=lambda: FixedClock(T0))
    processed: Counter[str] = field(default_factory=Counter)
    deaths: Counter[str] = field(default_factory=Counter)
    in_flight: list[tuple[WorkItem, datetime]] = field(default_factory=list)
    late_found: list[str] = field(default_factory=list)
    unknown: int = 0


object_spec = st.tuples(
    st.integers(min_value=0, max_value=600),  # key time, minutes after T0 - 1 h
    st.integers(min_value=0, max_value=60),  # arrival delay, minutes: at most the window
    st.lists(st.sampled_from(["fail", "die"]), max_size=3),  # what workers do before success
)
gaps = st.integers(min_value=1, max_value=MAX_GAP)
listing_steps = st.tuples(gaps, st.sampled_from(["harvest", "harvest", "complete"]))
all_steps = st.tuples(gaps, st.sampled_from(["harvest", "harvest", "complete", "sweep", "sweep"]))


def build(
    kind: str,
    specs: Sequence[tuple[int, int, list[str]]],
    *,
    delay_scale: int = 1,
    background: Sequence[int] = (),
) -> World:
    """Objects from ``specs`` (delays times ``delay_scale``), plus an on-time one every 30
    minutes arriving ``background[i]`` minutes after its key time."""
    timings = [(offset, delay * delay_scale, outcomes) for offset, delay, outcomes in specs]
    timings += [(30 * i, delay, []) for i, delay in enumerate(background)]
    objects = []
    for n, (offset, delay, outcomes) in enumerate(timings):
        t = T0 - timedelta(hours=1) + timedelta(minutes=offset)
        key = (
            ct_key(t, unique=f"u{n}")
            if kind == "cloudtrail"
            else eks_key(t, n=n, stream=f"s{n % 3}")
        )
        objects.append(Obj(key, t, t + timedelta(minutes=delay), deque(outcomes)))
    location = (
        cloudtrail_scope("", account_id=ACCOUNT, region="us-east-1")
        if kind == "cloudtrail"
        else eks_scope("", account_id=ACCOUNT, cluster="prod")
    )
    return World(kind, objects, location)


def deliver(world: World) -> None:
    for o in world.objects:
        if o.arrival <= world.clock.now and o.key not in world.bucket.objects:
            world.bucket.put(o.key, at=o.arrival)


def dispatch(session: Session, source_id: int, world: World, items: list[WorkItem]) -> None:
    mark_queued(session, source_id=source_id, objects=items, now=world.clock.now)
    session.commit()
    world.in_flight.extend((item, world.clock.now) for item in items)


def work(session: Session, source_id: int, world: World, item: WorkItem) -> None:
    outcomes = next(o.outcomes for o in world.objects if o.key == item.key)
    outcome = outcomes.popleft() if outcomes else "done"
    now = world.clock.now
    event(f"a worker outcome: {outcome}")
    if outcome == "fail":
        mark_failed(
            session, source_id=source_id, key=item.key, etag=item.etag, error="throttled", now=now
        )
    elif outcome == "die":
        # The events went out, then the worker was killed before recording anything.
        world.processed[item.key] += 1
        world.deaths[item.key] += 1
    else:
        world.processed[item.key] += 1
        mark_done(
            session,
            source_id=source_id,
            key=item.key,
            etag=item.etag,
            events=1,
            bytes=1,
            sha256="0" * 64,
            now=now,
        )
    session.commit()


def finish_all(session: Session, source_id: int, world: World) -> None:
    pending, world.in_flight = world.in_flight, []
    for item, _ in pending:
        work(session, source_id, world, item)


def finish_before_timeout(session: Session, source_id: int, world: World, until: datetime) -> None:
    # A worker slower than the requeue timeout counts as dead; model prompt workers here
    # and deaths explicitly, so that a duplicate is always attributable.
    due = [(i, at) for i, at in world.in_flight if at + POLICY.requeue_timeout <= until]
    world.in_flight = [(i, at) for i, at in world.in_flight if at + POLICY.requeue_timeout > until]
    for item, _ in due:
        work(session, source_id, world, item)


def harvest(session: Session, source_id: int, world: World) -> None:
    plan = list_new_objects(
        session,
        world.bucket,
        source_id=source_id,
        location=world.location,
        policy=POLICY,
        clock=world.clock,
    )
    assert plan.give_up == []
    assert plan.exhausted == []
    dispatch(session, source_id, world, plan.work)


def run_sweep(session: Session, source_id: int, world: World) -> None:
    report = sweep(
        session,
        world.bucket,
        source_id=source_id,
        location=world.location,
        policy=POLICY,
        clock=world.clock,
    )
    session.commit()
    world.late_found.extend(item.key for item in report.found if item.reason is WorkReason.LATE)
    world.unknown += report.unknown
    world.in_flight.extend((item, world.clock.now) for item in report.found)


def simulate(world: World, steps: list[tuple[int, str]], *, sweeps: bool) -> Session:
    session = Session(memory_engine(), expire_on_commit=False)
    source_id = add_source(session, kind=world.kind, cluster=world.location.cluster)
    # The harvest of this scope starts at T0, so every generated object is inside its lookback.
    ensure_cursor(
        session,
        source_id=source_id,
        scope=world.location.scope,
        now=T0,
        lookback=POLICY.first_harvest_lookback,
    )
    session.commit()
    for gap, op in steps:
        finish_before_timeout(session, source_id, world, world.clock.now + timedelta(minutes=gap))
        world.clock.advance(timedelta(minutes=gap))
        deliver(world)
        if op == "harvest":
            harvest(session, source_id, world)
        elif op == "sweep":
            run_sweep(session, source_id, world)
        else:
            finish_all(session, source_id, world)
    # Drain: let everything arrive, then run until nothing is left to do; each round is
    # past the requeue timeout, so what died is redone.
    finish_all(session, source_id, world)
    last_arrival = max(o.arrival for o in world.objects)
    world.clock.now = max(world.clock.now, last_arrival)
    for _ in range(10):
        world.clock.advance(POLICY.requeue_timeout + timedelta(minutes=1))
        deliver(world)
        if sweeps:
            run_sweep(session, source_id, world)
        harvest(session, source_id, world)
        if not world.in_flight:
            break
        finish_all(session, source_id, world)
    return session


def assert_each_processed_once_plus_deaths(world: World, session: Session) -> None:
    for o in world.objects:
        assert world.processed[o.key] == world.deaths[o.key] + 1, (
            f"{o.key} (time {o.time:%H:%M}, arrived {o.arrival:%H:%M}) processed "
            f"{world.processed[o.key]} times with {world.deaths[o.key]} deaths"
        )
    statuses = {row.key: row.status for row in session.scalars(select(ProcessedObject))}
    for o in world.objects:
        # Pruned (absent) rows were done: only completed rows are ever pruned.
        assert statuses.get(o.key, "done") == "done"


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    kind=st.sampled_from(["cloudtrail", "eks"]),
    specs=st.lists(object_spec, min_size=3, max_size=18),
    steps=st.lists(listing_steps, min_size=4, max_size=25),
)
def test_within_the_window_every_object_is_processed_exactly_once(
    kind: str, specs: list[tuple[int, int, list[str]]], steps: list[tuple[int, str]]
) -> None:
    world = build(kind, specs)
    # No sweeps: the regular listing alone must find everything.
    session = simulate(world, steps, sweeps=False)
    assert_each_processed_once_plus_deaths(world, session)


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    kind=st.sampled_from(["cloudtrail", "eks"]),
    specs=st.lists(object_spec, min_size=1, max_size=8),
    background=st.lists(st.integers(min_value=0, max_value=60), min_size=20, max_size=20),
    steps=st.lists(all_steps, min_size=6, max_size=25),
)
def test_beyond_the_window_the_sweep_finds_every_late_object(
    kind: str,
    specs: list[tuple[int, int, list[str]]],
    background: list[int],
    steps: list[tuple[int, str]],
) -> None:
    # Delays up to six windows: whatever the regular listing passed over, a sweep takes.
    # The on-time background keeps the watermark moving, so late objects fall behind it.
    world = build(kind, specs, delay_scale=6, background=background)
    session = simulate(world, steps, sweeps=True)
    assert_each_processed_once_plus_deaths(world, session)
    assert world.unknown == 0
    if any(o.arrival - o.time > WINDOW for o in world.objects):
        event("some object arrived later than the window")
    if world.late_found:
        event("a sweep found a late object")


@settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    kind=st.sampled_from(["cloudtrail", "eks"]),
    specs=st.lists(object_spec, min_size=3, max_size=18),
    steps=st.lists(all_steps, min_size=6, max_size=25),
)
def test_sweeps_never_redo_what_the_listing_did(
    kind: str, specs: list[tuple[int, int, list[str]]], steps: list[tuple[int, str]]
) -> None:
    # Arrivals within the window, sweeps interleaved with pruning: a sweep adds nothing late
    # and reports nothing unknown, because the listing already had it all.
    world = build(kind, specs)
    session = simulate(world, steps, sweeps=True)
    assert_each_processed_once_plus_deaths(world, session)
    assert world.late_found == []
    assert world.unknown == 0
