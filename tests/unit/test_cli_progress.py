"""Progress of long commands: drawn on a terminal, nothing when output is piped (item 13)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harvester.cli.progress import object_progress


def test_a_terminal_sees_objects_events_and_rate() -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    with object_progress("harvesting and scoring", console=terminal) as object_done:
        object_done("a.json.gz", 1200)
        object_done("b.json.gz", 34)
    drawn = screen.getvalue()  # the last refresh, before the transient display is cleared
    assert "harvesting and scoring" in drawn
    assert "2 objects, 1,234 events" in drawn
    assert "events/s" in drawn


def test_piped_output_gets_nothing_extra(capsys: pytest.CaptureFixture[str]) -> None:
    with object_progress("harvesting and scoring") as object_done:
        object_done("a.json.gz", 1200)
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""
