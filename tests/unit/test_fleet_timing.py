"""The fleet's limits derive from one setting and must never contradict each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.fleet import FleetTiming
from harvester.settings import load_settings


@pytest.mark.parametrize("limit", ["5s", "30s", "5m", "1h"])
def test_limits_are_ordered(limit: str, tmp_path: Path) -> None:
    settings = load_settings(
        {"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_TASK_TIME_LIMIT": limit}
    )
    timing = FleetTiming.from_settings(settings)
    hard = timing.hard_time_limit
    assert timing.soft_time_limit < hard
    # A source lease outlives its task and expires before the task could be redelivered.
    assert hard < timing.source_lease_ttl.total_seconds() <= timing.visibility_timeout
    # A scoring claim outlives its task and expires before the batch could be redelivered:
    # a redelivered batch must be scored, never skipped as a duplicate of its dead worker's.
    assert hard < timing.score_claim_ttl.total_seconds() < timing.visibility_timeout


def botocore_backoff(retries: int) -> float:
    # Standard retry mode waits up to 2**(n-1) s after attempt n, never more than 20 s.
    return sum(min(20.0, 2.0 ** (n - 1)) for n in range(1, retries + 1))


@pytest.mark.parametrize("limit", ["30s", "5m", "1h"])
def test_an_aws_call_that_never_answers_ends_well_within_the_soft_limit(
    limit: str, tmp_path: Path
) -> None:
    settings = load_settings(
        {"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_TASK_TIME_LIMIT": limit}
    )
    timing = FleetTiming.from_settings(settings)
    attempts = timing.aws_max_retries + 1
    worst = attempts * (timing.aws_connect_timeout + timing.aws_read_timeout)
    worst += botocore_backoff(timing.aws_max_retries)
    assert worst < timing.soft_time_limit * 0.75
    assert timing.aws_max_retries >= 1


def test_default_limits_no_longer_allow_six_sixty_second_attempts(tmp_path: Path) -> None:
    timing = FleetTiming.from_settings(load_settings({"HARVESTER_DATA_DIR": str(tmp_path)}))
    assert (timing.aws_connect_timeout, timing.aws_read_timeout) == (5.0, 15.0)
    assert timing.aws_max_retries == 2


def test_the_runtime_builds_its_aws_clients_with_the_derived_limits(tmp_path: Path) -> None:
    from harvester.runtime import Runtime

    settings = load_settings(
        {"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_TASK_TIME_LIMIT": "10m"}
    )
    timing = FleetTiming.from_settings(settings)
    config = Runtime.build(settings).aws.settings.to_config()
    assert config.read_timeout == timing.aws_read_timeout
    assert config.connect_timeout == timing.aws_connect_timeout
    assert config.retries == {"mode": "standard", "max_attempts": timing.aws_max_retries}
