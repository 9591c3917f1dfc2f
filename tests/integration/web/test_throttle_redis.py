"""The login throttle in Redis: every console process sees the same failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from redis import Redis

from harvester.settings import load_settings
from harvester.web.state import failure_store
from harvester.web.throttle import LoginThrottle, MemoryFailures, RedisFailures
from tests.conftest import REDIS_URL, FixedClock
from tests.integration.web.conftest import Web

pytestmark = pytest.mark.integration

WINDOW = timedelta(hours=1)


def test_failures_in_one_process_slow_down_another(redis_client: Any, clock: FixedClock) -> None:
    one = LoginThrottle(clock, RedisFailures(redis_client, window=WINDOW), free_failures=2)
    two = LoginThrottle(clock, RedisFailures(redis_client, window=WINDOW), free_failures=2)
    one.failed("10.0.0.1", "alice")
    two.failed("10.0.0.1", "alice")
    assert one.wait("10.0.0.1", "alice") == two.wait("10.0.0.1", "alice") == timedelta(seconds=1)
    assert redis_client.ttl(next(iter(redis_client.scan_iter("harvester:login-failures:*")))) > 0
    # Older than the window by the clock: forgotten, and counting starts over.
    clock.advance(WINDOW)
    assert two.wait("10.0.0.1", "alice") == timedelta(0)
    one.failed("10.0.0.1", "alice")
    assert two.wait("10.0.0.1", "alice") == timedelta(0)


def test_redis_is_used_when_configured(tmp_path: Any) -> None:
    base = {"data_dir": str(tmp_path)}
    assert isinstance(failure_store(load_settings(environ={}, **base)), MemoryFailures)
    configured = load_settings(environ={"HARVESTER_REDIS_URL": REDIS_URL}, **base)
    assert isinstance(failure_store(configured), RedisFailures)


def test_logins_are_refused_while_the_throttles_redis_is_down(web: Web, clock: FixedClock) -> None:
    # Fail closed: without the shared counts, guessing would be unlimited.
    nobody = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    web.state.throttle = LoginThrottle(clock, RedisFailures(nobody, window=WINDOW))
    response = web.login()
    assert response.status_code == 503
    assert "logins are unavailable" in response.text
