"""Geometry of the overview's two bar charts; the template draws them as inline SVG.

No JavaScript library and no inline style: bars are ``<rect>`` elements with a class, coloured
by the stylesheet, and each carries a ``<title>`` so hovering shows its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harvester.detect.model import Severity
from harvester.web.queries import DayCounts, HourCount

__all__ = ["Bar", "Chart", "Tick", "anomaly_chart", "event_chart", "nice_ceiling"]

WIDTH = 720
HEIGHT = 200
LEFT = 48  # room for the value axis labels
BOTTOM = 22  # room for the time axis labels
TOP = 8
# Stacked bottom to top from the most to the least severe, so the red sits on the axis.
STACK_ORDER = tuple(reversed(tuple(Severity)))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: Sequence[Bar]
    x_ticks: Sequence[Tick]
    y_ticks: Sequence[Tick]
    baseline: float
    left: int
    title: str
    empty: bool


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _y_ticks(top: int, plot_height: float) -> list[Tick]:
    # A middle line only where it is a whole number: "2.5 anomalies" reads wrong.
    fractions = (0.0, 0.5, 1.0) if top % 2 == 0 else (0.0, 1.0)
    return [
        Tick(x=LEFT - 6, y=TOP + plot_height * (1 - f), label=f"{int(top * f):,}")
        for f in fractions
    ]


def event_chart(hours: Sequence[HourCount]) -> Chart:
    plot_width = WIDTH - LEFT - 4
    plot_height = HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((h.events for h in hours), default=0))
    slot = plot_width / max(len(hours), 1)
    bars = []
    x_ticks = []
    for i, hour in enumerate(hours):
        height = plot_height * hour.events / top
        x = LEFT + i * slot
        bars.append(
            Bar(
                x=round(x + 1, 2),
                y=round(TOP + plot_height - height, 2),
                width=round(max(slot - 2, 1), 2),
                height=round(height, 2),
                css="bar-events",
                title=f"{hour.hour:%Y-%m-%d %H}:00 UTC: {hour.events:,} events",
            )
        )
        # Counted from the newest bar, so the current hour always has its label.
        if (len(hours) - 1 - i) % 6 == 0:
            x_ticks.append(Tick(x=round(x + slot / 2, 2), y=HEIGHT - 6, label=f"{hour.hour:%H}:00"))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        x_ticks=x_ticks,
        y_ticks=_y_ticks(top, plot_height),
        baseline=TOP + plot_height,
        left=LEFT,
        title="Events per hour, last 24 hours (UTC)",
        empty=not any(h.events for h in hours),
    )


def anomaly_chart(days: Sequence[DayCounts]) -> Chart:
    plot_width = WIDTH - LEFT - 4
    plot_height = HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((d.total for d in days), default=0))
    slot = plot_width / max(len(days), 1)
    bars = []
    x_ticks = []
    for i, day in enumerate(days):
        x = LEFT + i * slot
        y: float = TOP + plot_height
        for severity in STACK_ORDER:
            count = day.by_severity.get(severity.value, 0)
            if not count:
                continue
            height = plot_height * count / top
            y -= height
            bars.append(
                Bar(
                    x=round(x + 2, 2),
                    y=round(y, 2),
                    width=round(max(slot - 4, 1), 2),
                    height=round(height, 2),
                    css=f"sev-{severity.value}",
                    title=f"{day.day:%Y-%m-%d}: {count} {severity.value}",
                )
            )
        if (len(days) - 1 - i) % 2 == 0:
            x_ticks.append(Tick(x=round(x + slot / 2, 2), y=HEIGHT - 6, label=f"{day.day:%d %b}"))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        bars=bars,
        x_ticks=x_ticks,
        y_ticks=_y_ticks(top, plot_height),
        baseline=TOP + plot_height,
        left=LEFT,
        title=f"Anomalies per day by severity, last {len(days)} days (UTC)",
        empty=not any(d.total for d in days),
    )
