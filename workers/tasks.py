"""The tasks: each decodes ids, calls one harvester function, returns a small summary."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from time import perf_counter
from typing import Any

from celery import current_task
from kombu.exceptions import OperationalError as BrokerError

from harvester import metrics
from harvester.detect.state import ANONYMOUS
from harvester.notify.run import send_notifications
from harvester.pipeline import (
    correlate,
    dispatch_due,
    harvest_objects,
    harvest_source,
    mark_degraded,
    score_batch,
)
from workers.app import app, runtime, timing
from workers.base import harvester_task

log = logging.getLogger(__name__)


@harvester_task(name="harvest.dispatch", queue="harvest", max_retries=0)
def dispatch() -> dict[str, Any]:
    rt = runtime()
    result = dispatch_due(rt, enqueue=_enqueue_sources)
    metrics.record_dispatch(result, rt.clock())
    return asdict(result)


def _source_gave_up(args: list[Any], error: Exception) -> None:
    # Both harvest tasks take the source id first. The ledger brings their objects back.
    reason = f"gave up after retries: {error}"
    mark_degraded(runtime(), source_id=int(args[0]), reason=reason)


@harvester_task(name="harvest.source", queue="harvest", gave_up=_source_gave_up)
def harvest_source_task(source_id: int) -> dict[str, Any]:
    started = perf_counter()
    result = harvest_source(
        runtime(),
        source_id=source_id,
        enqueue=_enqueue_objects,
        lease_ttl=timing().source_lease_ttl,
    )
    metrics.record_source_run(result, kind=result.kind, seconds=perf_counter() - started)
    return result.summary()


@harvester_task(name="harvest.object", queue="harvest", gave_up=_source_gave_up)
def harvest_object_task(source_id: int, objects: list[list[str]]) -> dict[str, Any]:
    started = perf_counter()
    pairs = [(key, etag) for key, etag in objects]
    result = harvest_objects(runtime(), source_id=source_id, objects=pairs, emit=_emit)
    metrics.record_objects(result, kind=result.kind, seconds=perf_counter() - started)
    return result.summary()


# A score batch exists only as its message (a harvest task's objects have the ledger to
# bring them back): while the database or Redis is away, it waits rather than gives up.
@harvester_task(name="score.batch", queue="score", max_retries=None)
def score_batch_task(body: bytes) -> dict[str, Any]:
    started = perf_counter()
    # The task id stays the same across retries and redeliveries: the batch's own claims.
    summary = score_batch(runtime(), body=body, owner=current_task.request.id or ANONYMOUS)
    metrics.record_score(summary, perf_counter() - started)
    return asdict(summary)


@harvester_task(name="score.correlate", queue="score", max_retries=0)
def correlate_task() -> dict[str, Any]:
    run = correlate(runtime())
    metrics.record_correlation(run)
    return asdict(run)


@harvester_task(name="notify.send", queue="notify", max_retries=0)
def notify_task() -> dict[str, Any]:
    result = send_notifications(runtime())
    metrics.record_notifications(result)
    return result.summary()


def _enqueue_sources(due: Sequence[tuple[int, timedelta]]) -> None:
    # One producer (one connection) for the whole tick. Each task expires after one cadence:
    # a harvest that waited that long is superseded by the next.
    with app.producer_or_acquire() as producer:
        for source_id, cadence in due:
            try:
                harvest_source_task.apply_async(
                    (source_id,), expires=cadence.total_seconds(), producer=producer
                )
            except BrokerError:
                raise  # the broker is away: the tick failed, not this source
            except Exception:
                # One source that cannot be queued must not keep the others from their slot.
                log.exception("dispatch: could not queue a harvest of source %s", source_id)
                metrics.record_source_error(None)


def _enqueue_objects(source_id: int, objects: Sequence[tuple[str, str]]) -> None:
    harvest_object_task.apply_async((source_id, [list(pair) for pair in objects]))


def _emit(body: bytes, _count: int) -> None:
    score_batch_task.apply_async((body,))
