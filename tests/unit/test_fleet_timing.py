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
