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


@harvester_task(name="test.redis-fails", queue="score", max_retries=3)
def redis_fails() -> None:
    raise RedisConnectionError("Redis went away")


@pytest.fixture
def task_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client: Any) -> Iterator[Any]:
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HARVESTER_REDIS_URL", REDIS_URL)
    monkeypatch.setattr(workers.app, "_runtime", None)
    redis_fails.push_request(id="task-1", retries=0)
    try:
        yield redis_fails
    finally:
        redis_fails.pop_request()
        if workers.app._runtime is not None:
            workers.app._runtime.close()


def test_a_transient_error_is_retried(task_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def published(**_kwargs: Any) -> Retry:
        return Retry("retry sent")

    monkeypatch.setattr(task_env, "retry", published)
    with pytest.raises(Retry):
        task_env.run()


def test_a_retry_that_cannot_be_published_requeues_the_message(
    task_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unpublished(**kwargs: Any) -> Retry:
        # What Celery's Task.retry does when sending the retry fails: reject, no requeue.
        raise Reject(kwargs["exc"], requeue=False)

    monkeypatch.setattr(task_env, "retry", unpublished)
    with pytest.raises(Reject) as caught:
        task_env.run()
    assert caught.value.requeue is True
    assert isinstance(caught.value.reason, RedisConnectionError)
