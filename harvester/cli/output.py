"""Printing: a table on a terminal, JSON with ``--output json``."""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from harvester.terminal import cell, printable


class SafeConsole(Console):
    """A console whose plain strings have their control characters escaped (newlines kept)."""

    def print(self, *objects: Any, **options: Any) -> None:
        super().print(
            *(printable(o, keep_newlines=True) if isinstance(o, str) else o for o in objects),
            **options,
        )


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"


def console() -> Console:
    # Piped output gets wide lines instead of rich's 80-column default, so that grep and
    # less see whole rows.
    width = None if sys.stdout.isatty() else 240
    return SafeConsole(highlight=False, soft_wrap=False, width=width)


def err_console() -> Console:
    return SafeConsole(stderr=True, highlight=False)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError


def print_json(data: Any, *, sort_keys: bool = True) -> None:
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    sys.stdout.write(orjson.dumps(data, default=_default, option=option).decode() + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=cell(title) if title else None, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    console().print(table)


def emit(
    fmt: OutputFormat, records: list[dict[str, Any]], columns: Sequence[str], title: str
) -> None:
    """Print records as a table (the columns given, in order) or as a JSON array."""
    if fmt is OutputFormat.json:
        print_json(records)
        return
    if not records:
        console().print(f"no {title.lower()}")
        return
    print_table(title, columns, [[r.get(c) for c in columns] for r in records])


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"
