"""Prometheus metrics of the pipeline: definitions, recording helpers, multiprocess mode.

Names follow ``harvester_<noun>_<unit>`` (counters end in ``_total``, durations in
``_seconds``) and every label takes its values from a fixed set (:data:`LABEL_VALUES`): a
value outside the set is recorded as ``other``, never as itself, so a bug upstream cannot
turn a label into an unbounded one. No label ever carries an S3 key, an ARN or an address.

A task records its outcome with one call (:func:`record_objects`, :func:`record_source_run`,
:func:`record_score`, :func:`record_dispatch`); AWS calls are counted by the botocore hooks of
:func:`aws_event_hooks`, registered on the session factory.

Prefork workers (Celery's default pool) run in prometheus_client's multiprocess mode: each
process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``, and the process that serves
``/metrics`` sums them (:func:`multiprocess_registry`). The variable must be set before
``prometheus_client`` is first imported (it picks its storage at import), so the entrypoint
sets it and :func:`prepare_multiprocess_dir` empties the directory before the workers start.
Every metric here has at least one label: a metric without labels would create its file at
import, and importing this module must not write anything.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import platform
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from harvester import __version__
from harvester.aws.errors import ErrorCode, convert
from harvester.detect.model import Severity
from harvester.parse.errors import REASONS

if TYPE_CHECKING:
    from redis import Redis

    from harvester.correlation import CorrelationRun
    from harvester.detect.repository import StoreSummary
    from harvester.notify.deliver import DrainResult
    from harvester.pipeline import DispatchResult, ObjectResult, ObjectsResult, SourceRunResult

__all__ = [
    "COLLECTED",
    "LABEL_VALUES",
    "METRICS",
    "MULTIPROC_ENV",
    "BuildInfoCollector",
    "QueueCollector",
    "aws_event_hooks",
    "child_exit",
    "initialise_error_series",
    "multiprocess_active",
    "multiprocess_dir",
    "multiprocess_registry",
    "prepare_multiprocess_dir",
    "prune_dead_processes",
    "record_aws_timeout",
    "record_beat_state",
    "record_dead_letter",
    "record_dispatch",
    "record_integrity",
    "record_object",
    "record_objects",
    "record_score",
    "record_source_error",
    "record_source_run",
    "record_task_gave_up",
    "record_task_retry",
    "worker_process_started",
]

log = logging.getLogger(__name__)

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
OTHER: Final = "other"

# --- the fixed label sets ----------------------------------------------------------------------

KINDS: Final = ("cloudtrail", "eks", "unknown")
OBJECT_OUTCOMES: Final = ("done", "corrupt", "failed", "missing", OTHER)
SOURCE_RUN_STATUSES: Final = ("ok", "busy", "degraded", "disabled", "missing", OTHER)
PARSE_REASONS: Final = (*sorted(REASONS), OTHER)
ERROR_CODES: Final = tuple(code.value for code in ErrorCode)
AWS_SERVICES: Final = ("s3", "sts", "iam", "kms", "eks", "cloudtrail", "organizations", OTHER)
# The S3 operations the harvester and the doctor call; anything else is "other".
S3_OPERATIONS: Final = (
    "GetObject",
    "HeadObject",
    "ListObjectsV2",
    "ListObjects",
    "HeadBucket",
    "GetBucketLocation",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketEncryption",
    "GetBucketVersioning",
    "GetPublicAccessBlock",
    "GetBucketOwnershipControls",
    OTHER,
)
S3_OUTCOMES: Final = ("ok", *ERROR_CODES)
# The logical queues of workers.app (harvester/ may not import workers/; a test checks that
# the two agree). Their names in Redis are settings (harvest_queue, score_queue): labels carry
# the logical name, so dashboards do not depend on an installation's choice.
QUEUES: Final = ("harvest", "score", "notify")
QUEUE_LABELS: Final = (*QUEUES, OTHER)
TASKS: Final = (
    "harvest.dispatch",
    "harvest.source",
    "harvest.object",
    "score.batch",
    "score.correlate",
    "notify.send",
    OTHER,
)
SEVERITIES: Final = (*(s.value for s in Severity), OTHER)
SCORE_OUTCOMES: Final = ("ok", "detector_errors")
SCORE_EVENT_OUTCOMES: Final = ("scored", "duplicate")
SCORE_OUTPUT_NAMES: Final = ("anomalies", "suppressed", "incidents", "detector_errors")
DISPATCH_OUTCOMES: Final = ("dispatched", "busy")
BEAT_STATES: Final = ("leader", "standby")
DIGEST_OUTCOMES: Final = ("verified", "failed", "pending", "error")
LOG_FILE_OUTCOMES: Final = ("verified", "missing", "altered", "unharvested")
TIMEOUT_PHASES: Final = ("connect", "read")
NOTIFICATION_OUTCOMES: Final = ("sent", "failed", "timeout", "throttled", "dead", "digested")


@cache
def detector_ids() -> frozenset[str]:
    """The detector ids of the catalog, plus ``other``: the values of the ``detector`` label."""
    # Imported on first use: building the catalog is no work for an import of this module.
    from harvester.detect.engine import DEFAULT_CATALOG  # noqa: PLC0415

    return frozenset(spec.id for spec in DEFAULT_CATALOG.specs()) | {OTHER}


def _bounded(value: str | None, allowed: Iterable[str], default: str = OTHER) -> str:
    return value if value is not None and value in allowed else default


def kind_label(kind: str | None) -> str:
    return _bounded(kind, KINDS, "unknown")


def detector_label(detector: str) -> str:
    return _bounded(detector, detector_ids())


def severity_label(severity: str) -> str:
    return _bounded(str(severity), SEVERITIES)


# --- the metrics -------------------------------------------------------------------------------

_DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 240, 300)

OBJECTS = Counter(
    "harvester_objects_total",
    "Log objects harvested, by source kind and outcome (done, corrupt, failed, missing).",
    ["kind", "outcome"],
)
OBJECT_BYTES = Counter(
    "harvester_object_bytes_total",
    "Bytes of log objects read from S3 (as stored, compressed), by source kind.",
    ["kind"],
)
EVENTS = Counter(
    "harvester_events_total",
    "Normalized events parsed from log objects and sent to scoring, by source kind.",
    ["kind"],
)
PARSE_ERRORS = Counter(
    "harvester_parse_errors_total",
    "Corrupt log objects, by source kind and reason (CorruptObjectError.reason).",
    ["kind", "reason"],
)
SOURCE_RUN_SECONDS = Histogram(
    "harvester_source_run_duration_seconds",
    "Duration of one source run (list the new objects of every scope, queue them).",
    ["kind", "status"],
    buckets=_DURATION_BUCKETS,
)
OBJECT_RUN_SECONDS = Histogram(
    "harvester_object_run_duration_seconds",
    "Duration of one object task: fetch and parse its object (or its group of small ones).",
    ["kind"],
    buckets=_DURATION_BUCKETS,
)
S3_REQUESTS = Counter(
    "harvester_s3_requests_total",
    "S3 API calls after botocore's retries, by operation and outcome (ok or an error code).",
    ["operation", "outcome"],
)
AWS_ERRORS = Counter(
    "harvester_aws_errors_total",
    "Failed AWS API calls after botocore's retries, by service and error code.",
    ["service", "code"],
)
SCORE_SECONDS = Histogram(
    "harvester_score_batch_duration_seconds",
    "Duration of scoring one batch and storing its anomalies.",
    ["outcome"],
    buckets=_DURATION_BUCKETS,
)
SCORE_EVENTS = Counter(
    "harvester_score_events_total",
    "Events in score batches: scored, or skipped as already scored (a redelivery).",
    ["outcome"],
)
SCORE_OUTPUTS = Counter(
    "harvester_score_outputs_total",
    "What scoring produced: anomalies stored, suppressed, incidents, detector errors.",
    ["output"],
)
ANOMALIES = Counter(
    "harvester_anomalies_total",
    "New anomalies stored, by detector and severity (a repeat folded into one is not new).",
    ["detector", "severity"],
)
NOTIFICATIONS = Counter(
    "harvester_notifications_total",
    "Notification deliveries by destination and outcome (sent, failed, timeout, throttled, "
    "dead, digested).",
    ["destination", "outcome"],
)
DISPATCHED = Counter(
    "harvester_dispatched_sources_total",
    "Due sources seen by the dispatcher: sent to the harvest queue, or still busy.",
    ["outcome"],
)
DISPATCH_LAST_SUCCESS = Gauge(
    "harvester_dispatch_last_success_timestamp_seconds",
    "When the dispatcher last finished a run (Unix time), by the queue it sends to.",
    ["queue"],
    # Survives the child that set it: the newest value of any process is the answer.
    multiprocess_mode="max",
)
WORKER_PROCESSES = Gauge(
    "harvester_worker_processes",
    "Worker processes alive, by the queue they consume.",
    ["queue"],
    # A process counts while it lives; its file is dropped when it dies.
    multiprocess_mode="livesum",
)
BEAT_STATE = Gauge(
    "harvester_beat_state",
    "1 for the state this beat is in: leader (sends the schedule) or standby.",
    ["state"],
    multiprocess_mode="livemax",
)
TASK_RETRIES = Counter(
    "harvester_task_retries_total",
    "Task retries scheduled after a transient error, by task.",
    ["task"],
)
DEAD_LETTERS = Counter(
    "harvester_dead_letters_total",
    "Task messages given up on and recorded as dead letters, by task.",
    ["task"],
)
TASKS_GAVE_UP = Counter(
    "harvester_task_gave_up_total",
    "Tasks that gave up after their last retry of a transient error, by task.",
    ["task"],
)
SOURCE_ERRORS = Counter(
    "harvester_source_errors_total",
    "Source runs that failed on an unexpected error (the source is degraded), by source kind.",
    ["kind"],
)
AWS_TIMEOUTS = Counter(
    "harvester_aws_timeouts_total",
    "AWS requests that timed out (each attempt), by service and phase (connect or read).",
    ["service", "phase"],
)

DIGESTS = Counter(
    "harvester_digests_total",
    "CloudTrail digest files checked, by outcome (verified, failed, pending, error).",
    ["outcome"],
)
LOG_FILES_CHECKED = Counter(
    "harvester_log_files_checked_total",
    "Log files named by digests, by outcome (verified, missing, altered, unharvested).",
    ["outcome"],
)

METRICS: Final[tuple[Counter | Gauge | Histogram, ...]] = (
    OBJECTS,
    OBJECT_BYTES,
    EVENTS,
    PARSE_ERRORS,
    SOURCE_RUN_SECONDS,
    OBJECT_RUN_SECONDS,
    S3_REQUESTS,
    AWS_ERRORS,
    SCORE_SECONDS,
    SCORE_EVENTS,
    SCORE_OUTPUTS,
    ANOMALIES,
    DISPATCHED,
    DISPATCH_LAST_SUCCESS,
    WORKER_PROCESSES,
    BEAT_STATE,
    TASK_RETRIES,
    DEAD_LETTERS,
    TASKS_GAVE_UP,
    SOURCE_ERRORS,
    AWS_TIMEOUTS,
    DIGESTS,
    LOG_FILES_CHECKED,
    NOTIFICATIONS,
)
"""Every metric object of this module (the collectors below add their own families)."""

# The families the collectors below compute on scrape: (type, label names).
COLLECTED: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "harvester_queue_messages": ("gauge", ("queue",)),
    "harvester_queue_unacked_messages": ("gauge", ()),
    "harvester_broker_up": ("gauge", ()),
    "harvester_build_info": ("gauge", ("version", "python_version")),
}

# The values each label may take, per metric: what the helpers clamp to, and what the unit
# test checks after feeding them garbage. ``detector`` is checked against detector_ids().
LABEL_VALUES: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "harvester_objects": {"kind": KINDS, "outcome": OBJECT_OUTCOMES},
    "harvester_object_bytes": {"kind": KINDS},
    "harvester_events": {"kind": KINDS},
    "harvester_parse_errors": {"kind": KINDS, "reason": PARSE_REASONS},
    "harvester_source_run_duration_seconds": {"kind": KINDS, "status": SOURCE_RUN_STATUSES},
    "harvester_object_run_duration_seconds": {"kind": KINDS},
    "harvester_s3_requests": {"operation": S3_OPERATIONS, "outcome": S3_OUTCOMES},
    "harvester_aws_errors": {"service": AWS_SERVICES, "code": ERROR_CODES},
    "harvester_score_batch_duration_seconds": {"outcome": SCORE_OUTCOMES},
    "harvester_score_events": {"outcome": SCORE_EVENT_OUTCOMES},
    "harvester_score_outputs": {"output": SCORE_OUTPUT_NAMES},
    "harvester_anomalies": {"detector": (), "severity": SEVERITIES},
    "harvester_dispatched_sources": {"outcome": DISPATCH_OUTCOMES},
    "harvester_dispatch_last_success_timestamp_seconds": {"queue": QUEUE_LABELS},
    "harvester_worker_processes": {"queue": QUEUE_LABELS},
    "harvester_beat_state": {"state": BEAT_STATES},
    "harvester_task_retries": {"task": TASKS},
    "harvester_dead_letters": {"task": TASKS},
    "harvester_task_gave_up": {"task": TASKS},
    "harvester_source_errors": {"kind": KINDS},
    "harvester_aws_timeouts": {"service": AWS_SERVICES, "phase": TIMEOUT_PHASES},
    "harvester_digests": {"outcome": DIGEST_OUTCOMES},
    "harvester_log_files_checked": {"outcome": LOG_FILE_OUTCOMES},
    # destination: the operator's declared destinations (a few names, not free text).
    "harvester_notifications": {"destination": (), "outcome": NOTIFICATION_OUTCOMES},
    "harvester_queue_messages": {"queue": QUEUES},
    "harvester_queue_unacked_messages": {},
    "harvester_broker_up": {},
    "harvester_build_info": {"version": (), "python_version": ()},
}


# --- recording helpers -------------------------------------------------------------------------


def _parse_reason(error: str | None) -> str:
    # A corrupt object's error is str(CorruptObjectError): "<reason>: <detail>[ at ...]".
    head = (error or "").split(":", 1)[0].strip()
    return _bounded(head, PARSE_REASONS)


def record_object(outcome: ObjectResult, *, kind: str | None) -> None:
    """Count one object's outcome, bytes, events and (when corrupt) the parse error reason."""
    k = kind_label(kind)
    OBJECTS.labels(kind=k, outcome=_bounded(outcome.status, OBJECT_OUTCOMES)).inc()
    if outcome.bytes:
        OBJECT_BYTES.labels(kind=k).inc(outcome.bytes)
    if outcome.events:
        EVENTS.labels(kind=k).inc(outcome.events)
    if outcome.status == "corrupt":
        PARSE_ERRORS.labels(kind=k, reason=_parse_reason(outcome.error)).inc()


def record_objects(result: ObjectsResult, *, kind: str | None, seconds: float) -> None:
    """Record a ``harvest.object`` run: every object in it, and the run's duration."""
    for outcome in result.objects:
        record_object(outcome, kind=kind)
    OBJECT_RUN_SECONDS.labels(kind=kind_label(kind)).observe(seconds)


def record_source_run(result: SourceRunResult, *, kind: str | None, seconds: float) -> None:
    """Record a ``harvest.source`` run: its duration by status (ok, busy, degraded, ...)."""
    SOURCE_RUN_SECONDS.labels(
        kind=kind_label(kind), status=_bounded(result.status, SOURCE_RUN_STATUSES)
    ).observe(seconds)


def record_score(summary: StoreSummary, seconds: float) -> None:
    """Record a ``score.batch`` run, and its new anomalies by detector and severity."""
    SCORE_SECONDS.labels(outcome="detector_errors" if summary.errors else "ok").observe(seconds)
    scored = max(0, summary.events - summary.duplicates)
    SCORE_EVENTS.labels(outcome="scored").inc(scored)
    SCORE_EVENTS.labels(outcome="duplicate").inc(summary.duplicates)
    SCORE_OUTPUTS.labels(output="anomalies").inc(summary.anomalies)
    SCORE_OUTPUTS.labels(output="suppressed").inc(summary.suppressed)
    SCORE_OUTPUTS.labels(output="incidents").inc(summary.incidents)
    SCORE_OUTPUTS.labels(output="detector_errors").inc(summary.errors)
    for detector, severity in summary.new:
        ANOMALIES.labels(detector=detector_label(detector), severity=severity_label(severity)).inc()


def record_correlation(run: CorrelationRun) -> None:
    """Record a ``score.correlate`` pass (score batches no longer count incidents)."""
    SCORE_OUTPUTS.labels(output="incidents").inc(run.incidents)


def record_notifications(result: DrainResult) -> None:
    """Record one outbox drain (destination names are the operator's few, not free text)."""
    for (destination, outcome), count in result.outcomes.items():
        label = _bounded(outcome, NOTIFICATION_OUTCOMES)
        NOTIFICATIONS.labels(destination=destination, outcome=label).inc(count)


def record_dispatch(result: DispatchResult, now: datetime, *, queue: str = "harvest") -> None:
    """Record a finished dispatch: what it sent, and ``now`` as the last success."""
    DISPATCHED.labels(outcome="dispatched").inc(result.dispatched)
    DISPATCHED.labels(outcome="busy").inc(result.busy)
    DISPATCH_LAST_SUCCESS.labels(queue=_bounded(queue, QUEUE_LABELS)).set(now.timestamp())


def worker_process_started(queues: Iterable[str]) -> None:
    """Count this process as a live worker of each queue (call in ``worker_process_init``)."""
    for queue in set(queues):
        WORKER_PROCESSES.labels(queue=_bounded(queue, QUEUE_LABELS)).set(1)
    initialise_error_series()


def record_beat_state(*, leader: bool) -> None:
    BEAT_STATE.labels(state="leader").set(1 if leader else 0)
    BEAT_STATE.labels(state="standby").set(0 if leader else 1)


def record_task_retry(task: str) -> None:
    TASK_RETRIES.labels(task=_bounded(task, TASKS)).inc()


def record_integrity(
    *,
    verified: int,
    failed: int,
    pending: int,
    error: int,
    files_verified: int,
    files_missing: int,
    files_altered: int,
    files_unharvested: int,
) -> None:
    """Record one source's digest verification run (``harvester.integrity``)."""
    for outcome, count in (
        ("verified", verified),
        ("failed", failed),
        ("pending", pending),
        ("error", error),
    ):
        DIGESTS.labels(outcome=outcome).inc(count)
    for outcome, count in (
        ("verified", files_verified),
        ("missing", files_missing),
        ("altered", files_altered),
        ("unharvested", files_unharvested),
    ):
        LOG_FILES_CHECKED.labels(outcome=outcome).inc(count)


def record_dead_letter(task: str) -> None:
    DEAD_LETTERS.labels(task=_bounded(task, TASKS)).inc()


def record_task_gave_up(task: str) -> None:
    TASKS_GAVE_UP.labels(task=_bounded(task, TASKS)).inc()


def record_source_error(kind: str | None) -> None:
    SOURCE_ERRORS.labels(kind=kind_label(kind)).inc()


def record_aws_timeout(service: str, *, phase: str) -> None:
    AWS_TIMEOUTS.labels(
        service=_bounded(service, AWS_SERVICES), phase=_bounded(phase, TIMEOUT_PHASES, "read")
    ).inc()


# Counters of failures, created at zero in every worker process: a series that first appears
# with its first error is invisible to increase() and shows "No data" on a panel, not 0.
_ZERO_SERIES: Final[tuple[tuple[Counter, Mapping[str, tuple[str, ...]]], ...]] = (
    (DEAD_LETTERS, {"task": TASKS[:-1]}),
    (TASK_RETRIES, {"task": TASKS[:-1]}),
    (TASKS_GAVE_UP, {"task": TASKS[:-1]}),
    (SOURCE_ERRORS, {"kind": KINDS[:-1]}),
    (PARSE_ERRORS, {"kind": KINDS[:-1], "reason": PARSE_REASONS[:-1]}),
    (AWS_ERRORS, {"service": ("s3", "sts", "kms"), "code": ERROR_CODES}),
    (AWS_TIMEOUTS, {"service": ("s3", "sts"), "phase": TIMEOUT_PHASES}),
)


def initialise_error_series() -> None:
    """Create every labelled error and dead-letter series at zero (bounded: a few hundred)."""
    for counter, labels in _ZERO_SERIES:
        names = list(labels)
        for combination in itertools.product(*(labels[name] for name in names)):
            counter.labels(**dict(zip(names, combination, strict=True)))


# --- botocore hooks ----------------------------------------------------------------------------


def _service_and_operation(event_name: str) -> tuple[str, str]:
    # "after-call.s3.GetObject" / "after-call-error.s3.GetObject"
    parts = event_name.split(".")
    service = parts[1] if len(parts) > 1 else ""
    operation = parts[2] if len(parts) > 2 else ""
    return service, operation


def _count_call(service: str, operation: str, code: str | None) -> None:
    if code is not None:
        AWS_ERRORS.labels(
            service=_bounded(service, AWS_SERVICES), code=_bounded(code, ERROR_CODES, "other")
        ).inc()
    if service == "s3":
        S3_REQUESTS.labels(
            operation=_bounded(operation, S3_OPERATIONS),
            outcome=_bounded(code, ERROR_CODES) if code is not None else "ok",
        ).inc()


def _after_call(
    *,
    event_name: str = "",
    http_response: Any = None,
    parsed: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    """botocore ``after-call``: the final response of a call, after its retries."""
    try:
        service, operation = _service_and_operation(event_name)
        status = int(getattr(http_response, "status_code", 0) or 0)
        code: str | None = None
        if status >= 300:
            # The same conversion the pipeline applies, so the codes on the dashboard are the
            # ones in health reasons and logs.
            error = ClientError(dict(parsed or {}), operation or "unknown")  # type: ignore[arg-type]
            code = convert(error, operation=operation or "unknown").code.value
        _count_call(service, operation, code)
    except Exception:  # a metrics hook must never break an AWS call
        log.debug("metrics: after-call hook failed", exc_info=True)


def _after_call_error(*, event_name: str = "", exception: Any = None, **_: Any) -> None:
    """botocore ``after-call-error``: the call raised (connection lost, no credentials...)."""
    try:
        service, operation = _service_and_operation(event_name)
        code = ErrorCode.OTHER.value
        if isinstance(exception, BaseException):
            code = convert(exception, operation=operation or "unknown").code.value
        _count_call(service, operation, code)
    except Exception:  # a metrics hook must never break an AWS call
        log.debug("metrics: after-call-error hook failed", exc_info=True)


def _needs_retry(*, event_name: str = "", caught_exception: Any = None, **_: Any) -> None:
    """botocore ``needs-retry``: after every attempt; counts the attempts that timed out.

    Returns None so botocore's own retry handler decides whether to retry.
    """
    if isinstance(caught_exception, ConnectTimeoutError | ReadTimeoutError):
        service, _operation = _service_and_operation(event_name)
        phase = "connect" if isinstance(caught_exception, ConnectTimeoutError) else "read"
        record_aws_timeout(service, phase=phase)


def aws_event_hooks() -> list[tuple[str, Callable[..., None]]]:
    """``(event, handler)`` pairs for ``SessionFactory(event_hooks=...)``.

    Registered on the root ``after-call`` events, they see every service's calls: S3 calls
    count in ``harvester_s3_requests_total``, failed calls of any service in
    ``harvester_aws_errors_total``, timed-out attempts in ``harvester_aws_timeouts_total``.
    """
    return [
        ("after-call", _after_call),
        ("after-call-error", _after_call_error),
        ("needs-retry", _needs_retry),
    ]


# --- collectors computed on scrape -------------------------------------------------------------


class BuildInfoCollector(Collector):
    """``harvester_build_info{version, python_version} 1``."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "harvester_build_info",
            "Always 1; the labels say which version of audit-harvester runs.",
            labels=["version", "python_version"],
        )
        family.add_metric([__version__, platform.python_version()], 1.0)
        yield family


# kombu's Redis transport keeps one list per priority step; unprioritized messages go to the
# list named like the queue.
_KOMBU_PRIORITY_SEPARATOR: Final = "\x06\x16"
_KOMBU_PRIORITY_STEPS: Final = (3, 6, 9)
_KOMBU_UNACKED_KEY: Final = "unacked"


def _queue_lists(queue: str) -> list[str]:
    return [queue, *(f"{queue}{_KOMBU_PRIORITY_SEPARATOR}{step}" for step in _KOMBU_PRIORITY_STEPS)]


class QueueCollector(Collector):
    """Queue lengths read from the broker (Redis ``LLEN``) when Prometheus scrapes.

    ``harvester_queue_messages{queue}`` are the messages waiting in each queue,
    ``harvester_queue_unacked_messages`` those delivered to a worker and not yet acknowledged,
    ``harvester_broker_up`` whether the broker answered.
    """

    def __init__(self, redis: Redis, *, queues: Mapping[str, str] | None = None) -> None:
        self._redis = redis
        # Logical queue (the label) → the list's name in Redis (configurable in settings).
        names = queues if queues is not None else {queue: queue for queue in QUEUES}
        self._queues = [(logical, name) for logical, name in names.items() if logical in QUEUES]

    def describe(self) -> Iterator[Metric]:
        # Without describe() the registry would call collect() at registration: a Redis call.
        yield GaugeMetricFamily("harvester_queue_messages", "", labels=["queue"])
        yield GaugeMetricFamily("harvester_queue_unacked_messages", "")
        yield GaugeMetricFamily("harvester_broker_up", "")

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harvester_broker_up", "1 when the broker (Redis) answered.")
        try:
            pipe = self._redis.pipeline(transaction=False)
            for _, queue in self._queues:
                for name in _queue_lists(queue):
                    pipe.llen(name)
            pipe.hlen(_KOMBU_UNACKED_KEY)
            replies = [int(n) for n in pipe.execute()]
        except Exception as exc:  # noqa: BLE001  a scrape reports the outage, it does not fail
            log.warning(
                "metrics: cannot read queue lengths from the broker: %s", type(exc).__name__
            )
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        messages = GaugeMetricFamily(
            "harvester_queue_messages", "Messages waiting in each queue.", labels=["queue"]
        )
        per_queue = len(_KOMBU_PRIORITY_STEPS) + 1
        for index, (logical, _) in enumerate(self._queues):
            chunk = replies[index * per_queue : (index + 1) * per_queue]
            messages.add_metric([logical], float(sum(chunk)))
        yield messages
        yield GaugeMetricFamily(
            "harvester_queue_unacked_messages",
            "Messages delivered to a worker and not yet acknowledged (all queues).",
            value=float(replies[-1]),
        )


# --- multiprocess mode -------------------------------------------------------------------------


def multiprocess_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The multiprocess directory named by ``PROMETHEUS_MULTIPROC_DIR``, if any."""
    value = (os.environ if environ is None else environ).get(MULTIPROC_ENV)
    return Path(value) if value else None


def multiprocess_active() -> bool:
    """Whether this process writes its metrics to files (chosen when prometheus_client loaded)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create the directory, remove the files of earlier runs, and export it to children.

    Call it once in the process that starts the workers (``harvester worker``, before it
    execs Celery), before any worker process writes. Files left by an earlier run would add
    its counts to this one, and its live gauges would count workers that no longer exist.
    Only prometheus_client's ``*.db`` files are removed, so a mistaken path such as ``/tmp``
    loses nothing else.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def child_exit(pid: int, path: str | os.PathLike[str] | None = None) -> None:
    """Drop the live gauges of a worker process that exited (``worker_process_shutdown``).

    Its counters and histograms stay: what it counted happened. Without a directory (single
    process mode) there is nothing to do.
    """
    directory = Path(path) if path is not None else multiprocess_dir()
    if directory is None:
        return
    _mark_dead(pid, directory)


def _mark_dead(pid: int, directory: Path) -> None:
    mark_dead: Callable[[int, str], None] = mark_process_dead  # untyped in prometheus_client
    mark_dead(pid, str(directory))


_LIVE_FILE = re.compile(r"^gauge_live[a-z]+_(?P<pid>[0-9]+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (dead, not yet reaped by its parent) still answers kill(0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def prune_dead_processes(path: str | os.PathLike[str]) -> list[int]:
    """Drop the live gauges of processes that died without ``child_exit`` (OOM kill, SIGKILL).

    Worker processes share a pid namespace with the process serving the metrics (the Celery
    master, in the same container), so a pid that no longer exists is a dead worker.
    """
    directory = Path(path)
    dead: set[int] = set()
    for entry in directory.iterdir():
        match = _LIVE_FILE.match(entry.name)
        if match is None:
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and not _alive(pid):
            dead.add(pid)
    for pid in sorted(dead):
        _mark_dead(pid, directory)
    return sorted(dead)


class _PruningMultiProcessCollector(Collector):
    """prometheus_client's MultiProcessCollector, after dropping the dead's live gauges."""

    def __init__(self, path: Path) -> None:
        self._directory = path
        make: Callable[..., Collector] = MultiProcessCollector  # untyped in prometheus_client
        self._inner = make(None, path=str(path))

    def collect(self) -> Iterable[Metric]:
        prune_dead_processes(self._directory)
        return self._inner.collect()


def multiprocess_registry(path: str | os.PathLike[str]) -> CollectorRegistry:
    """A registry that sums the files of every worker process in ``path``, for serving."""
    directory = Path(path)
    if not directory.is_dir():
        raise ValueError(f"the metrics directory {directory} does not exist")
    registry = CollectorRegistry()
    registry.register(_PruningMultiProcessCollector(directory))
    return registry
