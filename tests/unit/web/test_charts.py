"""The overview's bar charts: scale, proportions, stacking, labels."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from harvester.web.charts import HEIGHT, anomaly_chart, event_chart, nice_ceiling
from harvester.web.queries import DayCounts, HourCount

START = datetime(2026, 1, 14, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (4999, 5000), (5001, 10000)],
)
def test_nice_ceiling(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_event_bars_are_proportional_and_titled() -> None:
    hours = [HourCount(START + timedelta(hours=i), events=i * 100) for i in range(24)]
    chart = event_chart(hours)
    assert len(chart.bars) == 24
    tallest = chart.bars[-1]
    half = chart.bars[11]
    assert tallest.height > half.height > 0
    # 2300 of a 5000 scale, and 1100 of it.
    assert half.height / tallest.height == pytest.approx(1100 / 2300, rel=0.01)
    assert all(b.y + b.height == pytest.approx(chart.baseline) for b in chart.bars)
    assert tallest.title == "2026-01-15 12:00 UTC: 2,300 events"
    assert [t.label for t in chart.y_ticks] == ["0", "2,500", "5,000"]
    assert [t.label for t in chart.x_ticks] == ["18:00", "00:00", "06:00", "12:00"]
    assert not chart.empty


def test_an_empty_chart_says_so() -> None:
    chart = event_chart([HourCount(START, 0)])
    assert chart.empty
    assert chart.bars[0].height == 0


def test_anomaly_bars_stack_most_severe_at_the_bottom() -> None:
    days = [
        DayCounts(date(2026, 1, 14), {"critical": 1, "high": 2, "low": 1}),
        DayCounts(date(2026, 1, 15), {}),
    ]
    chart = anomaly_chart(days)
    assert [b.css for b in chart.bars] == ["sev-critical", "sev-high", "sev-low"]
    critical, high, low = chart.bars
    assert critical.y + critical.height == pytest.approx(chart.baseline)
    assert high.y + high.height == pytest.approx(critical.y)
    assert low.y + low.height == pytest.approx(high.y)
    assert high.height == pytest.approx(2 * critical.height)
    assert [t.label for t in chart.y_ticks] == ["0", "5"]
    assert [t.label for t in chart.x_ticks] == ["15 Jan"]
    assert all(0 <= b.y <= HEIGHT for b in chart.bars)
    assert chart.bars[0].title == "2026-01-14: 1 critical"
