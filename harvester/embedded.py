"""The embedded default: dispatch, harvest and score in one process, no broker.

The same functions the Celery tasks call, wired together with in-process queues. SQLite and
in-memory detector state by default; a PostgreSQL URL works too.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from harvester.notify.run import send_notifications
from harvester.pipeline import (
    correlate,
    dispatch_due,
    harvest_objects,
    harvest_source,
    score_batch,
)
from harvester.runtime import Runtime

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(minutes=30)


@dataclass
class CycleResult:
    sources: int = 0
    objects: int = 0
    events: int = 0
    corrupt: int = 0
    failed: int = 0
    anomalies: int = 0
    incidents: int = 0  # made or extended by this cycle's correlation pass
    notified: int = 0  # notifications sent at the end of the cycle (harvester.notify)
    degraded: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)


def run_cycle(rt: Runtime, *, on_object: Callable[[str, int], None] | None = None) -> CycleResult:
    """One pass: every due source is listed, its new objects parsed, their events scored."""
    result = CycleResult()
    sources: deque[int] = deque()
    dispatch_due(rt, enqueue=lambda due: sources.extend(source_id for source_id, _ in due))
    while sources:
        source_id = sources.popleft()
        groups: list[tuple[int, Sequence[tuple[str, str]]]] = []
        run = harvest_source(rt, source_id=source_id, enqueue=_collect(groups), lease_ttl=LEASE_TTL)
        result.sources += 1
        if run.status == "degraded" and run.error:
            result.degraded.append(f"source {source_id}: {run.error}")
        if run.silent:
            result.silent.append(f"source {source_id}: {run.silent}")

        def emit(body: bytes, _count: int) -> None:
            result.anomalies += score_batch(rt, body=body).anomalies

        for sid, objects in groups:
            done = harvest_objects(rt, source_id=sid, objects=objects, emit=emit)
            for item in done.objects:
                result.objects += 1
                result.events += item.events
                result.corrupt += item.status == "corrupt"
                result.failed += item.status in ("failed", "missing")
                if on_object is not None:
                    on_object(item.key, item.events)
    result.incidents = correlate(rt).incidents
    # After correlation, so this cycle's anomalies and incidents leave in this cycle.
    result.notified = send_notifications(rt).sent
    return result


def _collect(
    into: list[tuple[int, Sequence[tuple[str, str]]]],
) -> Callable[[int, Sequence[tuple[str, str]]], None]:
    def enqueue(source_id: int, objects: Sequence[tuple[str, str]]) -> None:
        into.append((source_id, objects))

    return enqueue


def run_forever(
    rt: Runtime,
    *,
    interval: float = 30.0,
    cycles: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run cycles until interrupted (or ``cycles`` have run)."""
    done = 0
    while cycles is None or done < cycles:
        started = time.monotonic()
        result = run_cycle(rt)
        done += 1
        log.info(
            "cycle %d: %d sources, %d objects, %d events, %d anomalies",
            done,
            result.sources,
            result.objects,
            result.events,
            result.anomalies,
        )
        sleep(max(0.0, interval - (time.monotonic() - started)))
