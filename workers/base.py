"""``harvester_task``: the one decorator that gives every task our defaults.

Keyword-only options, so a misspelled option fails at import instead of being silently
accepted by Celery. Defaults: late ack, time limits, retry of transient errors with
exponential backoff and full jitter (bounded), and a cap on redeliveries of one message: a
poison message that kills its worker every time ends as a dead letter, not a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from celery import Task
from celery.exceptions import Reject
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from harvester import metrics
from harvester.aws.errors import AwsError, backoff_delay
from harvester.deadletters import record_dead_letter
from harvester.fleet import LOGICAL_QUEUES
from harvester.logs import log_context
from workers.app import TASK_QUEUES, app, runtime, timing

P = ParamSpec("P")
R = TypeVar("R")
AnyTask = Task[Any, Any]
# Called with a task's arguments and its last error when its retries give up.
GaveUp = Callable[[list[Any], Exception], None]

log = logging.getLogger(__name__)

# Worth another try: AWS said so (throttling, 5xx, expired credentials), or a connection to
# the database or Redis dropped (a failover, a restart).
TRANSIENT: tuple[type[Exception], ...] = (AwsError, OperationalError, DBAPIError, RedisError)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, AwsError):
        return exc.retryable
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, OperationalError)
    return True


def _delivery_count(task: AnyTask) -> int:
    """How many times this message (this task id, this retry) has started."""
    key = f"harvester:deliveries:{task.request.id}:{task.request.retries}"
    redis = runtime().redis
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, 24 * 3600)
    count, _ = pipe.execute()
    return int(count)


def _dead_letter(task: AnyTask, name: str, deliveries: int, args: list[Any]) -> dict[str, Any]:
    reason = f"delivered {deliveries} times without finishing (worker killed each time?)"
    record_dead_letter(runtime(), task=name, task_id=str(task.request.id), args=args, reason=reason)
    log.error("task %s[%s] dead-lettered: %s", name, task.request.id, reason)
    metrics.record_dead_letter(name)
    return {"dead_letter": True}


def _give_up(
    task: AnyTask, name: str, exc: Exception, args: list[Any], gave_up: GaveUp | None
) -> dict[str, Any]:
    """The end of a task whose transient error outlasted its retries (or cannot be retried).

    Said as what it is, "giving up", and counted; ``gave_up`` records it where an operator
    looks (a harvest marks its source degraded). The message is acked either way.
    """
    retries = task.request.retries
    log.error("task %s[%s] giving up after %d retries: %s", name, task.request.id, retries, exc)
    metrics.record_task_gave_up(name)
    if gave_up is not None:
        try:
            gave_up(args, exc)
        except Exception:  # noqa: BLE001  the store that failed may be the one to record in
            log.warning("task %s[%s]: could not record giving up", name, task.request.id)
    return {"gave_up": True, "error": str(exc)}


def harvester_task(
    *,
    name: str,
    queue: str,
    max_retries: int | None = 5,
    retry_base: float = 2.0,
    retry_cap: float = 120.0,
    gave_up: GaveUp | None = None,
) -> Callable[[Callable[P, R]], AnyTask]:
    """Register ``fn`` as task ``name`` on the logical ``queue`` (harvest, score, notify).

    Time limits come from the app's configuration (``harvester.fleet.FleetTiming``).
    ``max_retries=None`` retries transient errors for as long as they last (every
    ``retry_cap`` seconds at most): for a task whose message is the only copy of its work.
    ``gave_up(args, error)`` is called when the retries end without success.
    """
    if queue not in LOGICAL_QUEUES:
        raise ValueError(f"unknown queue {queue!r}: use one of {', '.join(LOGICAL_QUEUES)}")

    def decorate(fn: Callable[P, R]) -> AnyTask:
        def run(self: AnyTask, /, *args: P.args, **kwargs: P.kwargs) -> R | dict[str, Any]:
            try:
                # Inside the retry handling: a Redis outage as the task starts is a transient
                # error like any other, retried, not a failure that acks the message away.
                deliveries = _delivery_count(self)
                if deliveries > timing().max_deliveries:
                    return _dead_letter(self, name, deliveries, list(args))
                with log_context(task_id=self.request.id):
                    return fn(*args, **kwargs)
            except TRANSIENT as exc:
                exhausted = max_retries is not None and self.request.retries >= max_retries
                if not _retryable(exc) or exhausted:
                    return _give_up(self, name, exc, list(args), gave_up)
                delay = backoff_delay(self.request.retries, base=retry_base, cap=retry_cap)
                log.warning("task %s retrying in %.1fs: %s", name, delay, exc)
                metrics.record_task_retry(name)
                try:
                    raise self.retry(exc=exc, countdown=delay) from None
                except Reject as unpublished:
                    # Celery rejects, and so drops, a task whose retry it could not publish:
                    # the broker is what failed. Hand the message back instead; if the broker
                    # is still away, its visibility timeout brings it back.
                    cause = unpublished.args[0] if unpublished.args else exc
                    log.warning("task %s: retry not sent (%s); requeued", name, cause)
                    raise Reject(cause, requeue=True) from None

        run.__doc__ = fn.__doc__
        TASK_QUEUES[name] = queue
        task: AnyTask = app.task(
            name=name, bind=True, acks_late=True, max_retries=max_retries, ignore_result=True
        )(run)
        return task

    return decorate
