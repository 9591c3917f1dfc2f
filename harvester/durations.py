"""Durations as operators write them: ``30s``, ``5m``, ``1h``, ``7d`` or plain seconds."""

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"([0-9]+)([smhdw])")


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``90``, ``"90s"``, ``"5m"``, ``"1h30m"`` into a timedelta, or raise ValueError."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return timedelta(seconds=value)
    text = value.strip().lower()
    if text.isascii() and text.isdigit():
        return timedelta(seconds=int(text))
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(
            f"not a duration: {value!r} (use a number of seconds or e.g. 30s, 5m, 1h, 1h30m, 7d)"
        )
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def format_duration(delta: timedelta) -> str:
    """The shortest exact form: 300 s -> ``5m``, 5400 s -> ``1h30m``."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def time_or_duration(value: str, now: datetime, *, future: bool = False) -> datetime:
    """A duration back from ``now`` (ahead of it with ``future``) or an ISO 8601 time.

    A time without a zone is UTC. Raises ValueError saying what to give instead.
    """
    try:
        delta = parse_duration(value)
    except ValueError:
        pass
    else:
        return now + delta if future else now - delta
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            "give a duration (30m, 24h, 7d) or a time (2026-01-15T12:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
