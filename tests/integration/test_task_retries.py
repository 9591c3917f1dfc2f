"""harvester_task's retries: a retry the broker cannot take must not drop the message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Reject, Retry
from redis.exceptions import ConnectionError as RedisConnectionError

import workers.app
from tests.conftest import REDIS_URL
from workers.base import harvester_task


def _redis_fails() -> None:
    raise RedisConnectionError("Redis went away")


def _published(**_kwargs: Any) -> Retry:
    return Retry("retry sent")


@pytest.fixture
def make_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client: Any) -> Iterator[Any]:
    """Registers a task that always hits a Redis outage, for this test only."""
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HARVESTER_REDIS_URL", REDIS_URL)
    monkeypatch.setattr(workers.app, "_runtime", None)
    made: list[Any] = []

    def make(max_retries: int | None, retries: int = 0) -> Any:
        name = f"test.redis-fails-{len(made)}"
        task = harvester_task(name=name, queue="score", max_retries=max_retries)(_redis_fails)
        task.push_request(id=f"task-{len(made)}", retries=retries)
        made.append(task)
        return task

    try:
        yield make
    finally:
        for task in made:
            task.pop_request()
            workers.app.app.tasks.pop(task.name, None)
            workers.app.TASK_QUEUES.pop(task.name, None)
        if workers.app._runtime is not None:
            workers.app._runtime.close()


def test_a_transient_error_is_retried(make_task: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    task = make_task(max_retries=3)
    monkeypatch.setattr(task, "retry", _published)
    with pytest.raises(Retry):
        task.run()


def test_a_retry_that_cannot_be_published_requeues_the_message(
    make_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unpublished(**kwargs: Any) -> Retry:
        # What Celery's Task.retry does when sending the retry fails: reject, no requeue.
        raise Reject(kwargs["exc"], requeue=False)

    task = make_task(max_retries=3)
    monkeypatch.setattr(task, "retry", unpublished)
    with pytest.raises(Reject) as caught:
        task.run()
    assert caught.value.requeue is True
    assert isinstance(caught.value.reason, RedisConnectionError)


@pytest.mark.parametrize(("max_retries", "gives_up"), [(3, True), (None, False)])
def test_retries_end_only_where_the_work_has_another_home(
    make_task: Any, monkeypatch: pytest.MonkeyPatch, max_retries: int | None, gives_up: bool
) -> None:
    task = make_task(max_retries=max_retries, retries=50)
    monkeypatch.setattr(task, "retry", _published)
    if gives_up:
        assert task.run() == {"gave_up": True, "error": "Redis went away"}
        return
    with pytest.raises(Retry):
        task.run()


def test_a_redis_failure_as_the_task_starts_is_retried_not_lost(
    make_task: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery counter's Redis call fails once: the batch is retried, then runs."""
    ran: list[str] = []
    task = harvester_task(name="test.counts-deliveries", queue="score", max_retries=None)(
        lambda: ran.append("ran") or {"ok": True}
    )
    task.push_request(id="batch-1", retries=0)
    redis = workers.app.runtime().redis
    real_pipeline = redis.pipeline
    failures = iter([RedisConnectionError("Redis went away as the task started")])

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(redis, "pipeline", pipeline)
    monkeypatch.setattr(task, "retry", _published)
    try:
        with pytest.raises(Retry):
            task.run()
        assert ran == []
        assert task.run() == {"ok": True}
        assert ran == ["ran"]
    finally:
        task.pop_request()
        workers.app.app.tasks.pop(task.name, None)
        workers.app.TASK_QUEUES.pop(task.name, None)
