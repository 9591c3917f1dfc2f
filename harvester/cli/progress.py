"""Progress of long work (objects and events done, and the rate) on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

ObjectDone = Callable[[str, int], None]


def _nothing(_key: str, _events: int) -> None:
    return None


@contextmanager
def object_progress(label: str, *, console: Console | None = None) -> Iterator[ObjectDone]:
    """A callback to call as each object finishes (key, events), drawn live on stderr.

    On a terminal only: piped or redirected output gets nothing extra, so scripts and
    logs see the same lines as before. ``console`` replaces stderr (tests).
    """
    if console is None and not sys.stderr.isatty():
        yield _nothing
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]{label}"),
        TextColumn("{task.fields[objects]:,} objects, {task.completed:,.0f} events"),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(label, total=None, objects=0, rate=0.0)
        done = {"objects": 0, "events": 0}

        def object_done(_key: str, events: int) -> None:
            done["objects"] += 1
            done["events"] += events
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(
                task,
                completed=done["events"],
                objects=done["objects"],
                rate=done["events"] / elapsed,
            )

        yield object_done
