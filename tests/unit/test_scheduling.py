from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from harvester.scheduling import next_run_after, offset_seconds

CADENCE = timedelta(minutes=5)


@given(
    source_id=st.integers(min_value=1, max_value=10**9),
    seconds=st.integers(min_value=0, max_value=10**9),
    cadence=st.integers(min_value=60, max_value=86400),
)
def test_next_run_is_after_now_and_within_one_cadence(
    source_id: int, seconds: int, cadence: int
) -> None:
    now = datetime(2021, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    period = timedelta(seconds=cadence)
    nxt = next_run_after(now, source_id=source_id, cadence=period)
    assert now < nxt <= now + period
    # The slot is stable: asking again from just before it gives the same slot.
    assert next_run_after(nxt - timedelta(seconds=1), source_id=source_id, cadence=period) == nxt


def test_offsets_spread_sources_over_the_interval() -> None:
    buckets = Counter(offset_seconds(i, CADENCE) // 30 for i in range(1, 10_001))
    # Ten 30-second buckets in a 5-minute cadence: each holds about 1,000 of 10,000 sources.
    assert len(buckets) == 10
    assert max(buckets.values()) < 1_150
    assert min(buckets.values()) > 850


def test_offset_is_deterministic() -> None:
    assert offset_seconds(42, CADENCE) == offset_seconds(42, CADENCE)
