"""One source's failure stays that source's: degraded, logged with its id, counted.

An exception injected into one source of several, for ``harvester run --once`` (the embedded
cycle) and for the fleet's path (dispatch queues every due source, each ``harvest.source``
task runs one); and a harvest whose retries give up (issue 12, items 3 and 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

import workers.app
from harvester import pipeline
from harvester.aws.errors import EndpointUnreachable
from harvester.db.models import ProcessedObject, Source
from harvester.embedded import run_cycle
from harvester.runtime import Runtime
from tests.conftest import REDIS_URL, FixedClock
from tests.integration.seeding import ACCOUNTS, REGIONS, Bucket

INJECTED = "injected failure of one source"


def _sources(rt: Runtime) -> dict[str, int]:
    """Cloudtrail source id by account id."""
    with rt.sessions() as session:
        rows = session.scalars(select(Source).where(Source.kind == "cloudtrail")).all()
        return {row.account.account_id: row.id for row in rows}


def _health(rt: Runtime, source_id: int) -> tuple[str, str | None]:
    with rt.sessions() as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source.health, source.health_reason


def _done_sources(rt: Runtime) -> set[int]:
    with rt.sessions() as session:
        rows = session.scalars(
            select(ProcessedObject.source_id).where(ProcessedObject.status == "done")
        )
        return set(rows)


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _seed(bucket: Bucket, now: FixedClock) -> None:
    for account in ACCOUNTS:
        bucket.put_trail(account, REGIONS[0], now() - timedelta(minutes=30))


@pytest.fixture
def fail_one(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Makes the listing of the sources put in the returned list raise."""
    victims: list[int] = []
    real = pipeline.list_new_objects

    def listing(session: Any, lister: Any, *, source_id: int, **kwargs: Any) -> Any:
        if source_id in victims:
            raise RuntimeError(INJECTED)
        return real(session, lister, source_id=source_id, **kwargs)

    monkeypatch.setattr(pipeline, "list_new_objects", listing)
    return victims


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
def test_run_once_harvests_the_others_when_one_source_raises(
    runtime: Runtime,
    bucket: Bucket,
    now: FixedClock,
    fail_one: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _seed(bucket, now)
    ids = _sources(runtime)
    victim = ids[ACCOUNTS[1]]
    fail_one.append(victim)
    errors = _count("harvester_source_errors_total", kind="cloudtrail")

    result = run_cycle(runtime)

    assert result.sources == 4
    assert _done_sources(runtime) == {ids[ACCOUNTS[0]], ids[ACCOUNTS[2]]}
    health, reason = _health(runtime, victim)
    assert health == "degraded"
    assert reason == f"unexpected error: RuntimeError: {INJECTED}"
    assert result.degraded == [f"source {victim}: {reason}"]
    assert _count("harvester_source_errors_total", kind="cloudtrail") - errors == 1
    (logged,) = [r for r in caplog.records if r.getMessage().startswith(f"source {victim}:")]
    assert logged.levelname == "ERROR"
    # The traceback, as the record carries it (the redacting filter formats it early).
    assert INJECTED in (logged.exc_text or str(logged.exc_info and logged.exc_info[1]))


@pytest.fixture
def worker_world(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Runtime]:
    """The tasks' runtime (workers.app.runtime()) on the test's database and Redis."""
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HARVESTER_DATABASE_URL", runtime.settings.effective_database_url)
    monkeypatch.setenv("HARVESTER_SECRET_KEY", "test-key")
    monkeypatch.setenv("HARVESTER_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("HARVESTER_BROKER_URL", REDIS_URL)
    monkeypatch.setattr(
        workers.app, "_runtime", Runtime.build(workers.app.load_settings(), clock=runtime.clock)
    )
    try:
        yield workers.app.runtime()
    finally:
        workers.app.runtime().close()
        monkeypatch.setattr(workers.app, "_runtime", None)


def _run(task: Any, *args: Any, retries: int = 0) -> Any:
    task.push_request(id=f"test-{task.name}-{args}", retries=retries)
    try:
        return task.run(*args)
    finally:
        task.pop_request()


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
def test_fleet_dispatch_and_harvest_tasks_isolate_one_failing_source(  # noqa: PLR0917  fixtures
    worker_world: Runtime,
    bucket: Bucket,
    now: FixedClock,
    fail_one: list[int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from workers import tasks

    _seed(bucket, now)
    ids = _sources(worker_world)
    unqueueable, failing = ids[ACCOUNTS[0]], ids[ACCOUNTS[1]]
    fail_one.append(failing)
    queued: list[int] = []
    objects: list[tuple[int, list[list[str]]]] = []

    def send_source(args: tuple[int], **_: Any) -> None:
        if args[0] == unqueueable:
            raise RuntimeError(INJECTED)
        queued.append(args[0])

    monkeypatch.setattr(tasks.harvest_source_task, "apply_async", send_source)
    monkeypatch.setattr(
        tasks.harvest_object_task, "apply_async", lambda args, **_: objects.append(args)
    )

    # The dispatch queues every due source but the one that cannot be queued.
    summary = _run(tasks.dispatch)
    assert summary["due"] == 4
    assert unqueueable not in queued
    assert len(queued) == 3
    assert any(f"source {unqueueable}" in r.getMessage() for r in caplog.records)
    # Each harvest.source task: the failing source is degraded, the task itself returns.
    results = {source_id: _run(tasks.harvest_source_task, source_id) for source_id in queued}
    assert results[failing]["status"] == "degraded"
    assert _health(worker_world, failing)[0] == "degraded"
    assert {sid for sid, _ in objects} == {ids[ACCOUNTS[2]]}


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
def test_a_harvest_whose_retries_give_up_degrades_its_source(
    worker_world: Runtime,
    bucket: Bucket,
    now: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from workers import tasks

    _seed(bucket, now)
    source_id = _sources(worker_world)[ACCOUNTS[0]]

    def unreachable(*_: Any, **__: Any) -> Any:
        raise EndpointUnreachable(
            "could not connect to the AWS endpoint for ListObjectsV2",
            operation="ListObjectsV2",
            remedy="Check network access to AWS.",
        )

    monkeypatch.setattr(pipeline, "list_new_objects", unreachable)
    gave_up = _count("harvester_task_gave_up_total", task="harvest.source")
    retries = tasks.harvest_source_task.max_retries

    assert _run(tasks.harvest_source_task, source_id, retries=retries)["gave_up"] is True

    health, reason = _health(worker_world, source_id)
    assert health == "degraded"
    assert str(reason).startswith("gave up after retries: could not connect")
    assert _count("harvester_task_gave_up_total", task="harvest.source") - gave_up == 1
    assert any("giving up" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("runtime", ["sqlite"], indirect=True)
def test_an_unexpected_error_on_one_object_fails_that_object_only(
    runtime: Runtime, bucket: Bucket, now: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(bucket, now)
    bad = bucket.put_trail(ACCOUNTS[0], REGIONS[0], now() - timedelta(minutes=20))
    real = pipeline.parse_object

    def parse(body: Any, *, key: str, **kwargs: Any) -> Any:
        if key == bad:
            raise RuntimeError(INJECTED)
        return real(body, key=key, **kwargs)

    monkeypatch.setattr(pipeline, "parse_object", parse)
    result = run_cycle(runtime)
    assert result.failed == 1
    assert result.objects == len(bucket.seeded.event_ids)
    with runtime.sessions() as session:
        failed = session.scalars(
            select(ProcessedObject).where(ProcessedObject.status == "failed")
        ).all()
    assert [(row.key, row.error) for row in failed] == [
        (bad, f"unexpected error: RuntimeError: {INJECTED}")
    ]
