from datetime import UTC, datetime, timedelta

import pytest

from harvester.durations import format_duration, parse_duration, time_or_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("7d", 604800), (45, 45)],
)
def test_parse_duration(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-5", "five minutes", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [1, 59, 60, 300, 5400, 86400, 90061])
def test_format_round_trips(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "future", "expected"),
    [
        ("2h", False, datetime(2026, 12, 6, 10, 0, tzinfo=UTC)),
        ("1d", True, datetime(2026, 12, 7, 12, 0, tzinfo=UTC)),
        ("2026-11-01T00:00Z", False, datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T00:00", False, datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T02:00+02:00", False, datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_time_or_duration(value: str, future: bool, expected: datetime) -> None:
    assert time_or_duration(value, NOW, future=future) == expected


def test_time_or_duration_says_what_to_give() -> None:
    with pytest.raises(ValueError, match="give a duration"):
        time_or_duration("last tuesday", NOW)
