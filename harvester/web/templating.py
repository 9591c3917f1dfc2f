"""The Jinja2 environment of the pages: autoescaped, strict about undefined names."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "ago", "build_templates", "duration", "when"]

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return f"{value:%Y-%m-%d %H:%M} UTC"


def duration(value: timedelta | None) -> str:
    """Two units at most: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    if value > now:
        return "in " + duration(value - now)
    return duration(now - value) + " ago"


def number(value: int) -> str:
    return f"{value:,}"


def build_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, duration=duration, ago=ago, number=number)
    return Jinja2Templates(env=env)
