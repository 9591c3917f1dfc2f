"""The tasks: each decodes ids, calls one harvester function, returns a small summary."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from harvester.pipeline import dispatch_due, harvest_objects, harvest_source, score_batch
from workers.app import runtime, timing
from workers.base import harvester_task


@harvester_task(name="harvest.dispatch", queue="harvest", max_retries=0)
def dispatch() -> dict[str, Any]:
    return asdict(dispatch_due(runtime(), enqueue=_enqueue_source))


@harvester_task(name="harvest.source", queue="harvest")
def harvest_source_task(source_id: int) -> dict[str, Any]:
    result = harvest_source(
        runtime(),
        source_id=source_id,
        enqueue=_enqueue_objects,
        lease_ttl=timing().source_lease_ttl,
    )
    return result.summary()


@harvester_task(name="harvest.object", queue="harvest")
def harvest_object_task(source_id: int, objects: list[list[str]]) -> dict[str, Any]:
    pairs = [(key, etag) for key, etag in objects]
    return harvest_objects(runtime(), source_id=source_id, objects=pairs, emit=_emit).summary()


@harvester_task(name="score.batch", queue="score")
def score_batch_task(body: bytes) -> dict[str, Any]:
    return asdict(score_batch(runtime(), body=body))


def _enqueue_source(source_id: int, cadence: timedelta) -> None:
    # Expires after one cadence: a harvest that waited that long is superseded by the next.
    harvest_source_task.apply_async((source_id,), expires=cadence.total_seconds())


def _enqueue_objects(source_id: int, objects: Sequence[tuple[str, str]]) -> None:
    harvest_object_task.apply_async((source_id, [list(pair) for pair in objects]))


def _emit(body: bytes, _count: int) -> None:
    score_batch_task.apply_async((body,))
