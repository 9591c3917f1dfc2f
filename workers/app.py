"""The Celery app: queues, routes, limits, the batch serializer, and the world after fork.

Start workers with ``harvester worker`` or ``celery -A workers.app worker -Q harvest,score``,
and beat with ``harvester beat`` or ``celery -A workers.app beat`` (the leader-locked scheduler
is configured). Queue names and limits come from settings (see ``harvester.fleet``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import msgspec
from celery import Celery, bootsteps, signals
from kombu import Queue
from kombu.serialization import register

from harvester import metrics
from harvester.cli.metrics_cmds import DEFAULT_ADDR, start_metrics_server
from harvester.db.engine import make_engine
from harvester.fleet import FleetTiming, queue_names
from harvester.health_files import HEARTBEAT_INTERVAL, health_files_from_env
from harvester.logs import configure_logging
from harvester.probes import database_check, fleet_readiness
from harvester.runtime import Runtime
from harvester.settings import Settings, load_settings

SERIALIZER = "harvester-msgpack"
# Set by `harvester worker --metrics-port/--metrics-addr` (and beat's).
METRICS_PORT_ENV = "HARVESTER_METRICS_PORT"
METRICS_ADDR_ENV = "HARVESTER_METRICS_ADDR"
MAX_MEMORY_PER_CHILD_KIB = 1_000_000

# Each task's logical queue ("harvest" or "score"), filled by ``harvester_task``; the router
# maps it to the configured queue name at send time.
TASK_QUEUES: dict[str, str] = {}


def _register_serializer() -> None:
    # msgpack carries score batches as raw bytes: no base64, no JSON escaping of our payload.
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder()
    register(
        SERIALIZER,
        encoder.encode,  # type: ignore[arg-type]  # kombu's stubs predate binary serializers
        decoder.decode,  # type: ignore[arg-type]
        content_type="application/x-harvester-msgpack",
        content_encoding="binary",
    )


def celery_config(settings: Settings) -> dict[str, Any]:
    timing = FleetTiming.from_settings(settings)
    names = queue_names(settings)
    transport = {"visibility_timeout": timing.visibility_timeout}

    def route(name: str, *_: Any, **__: Any) -> dict[str, str] | None:
        logical = TASK_QUEUES.get(name)
        return {"queue": names[logical]} if logical else None

    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        # Every place Celery reads a visibility timeout gets the same value.
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": SERIALIZER,
        "accept_content": [SERIALIZER, "json"],
        "task_acks_late": True,
        # A worker killed mid-task (OOM, SIGKILL) leaves its message to be redelivered.
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": timing.soft_time_limit,
        "task_time_limit": timing.hard_time_limit,
        "worker_max_memory_per_child": MAX_MEMORY_PER_CHILD_KIB,
        "worker_hijack_root_logger": False,
        # Our handler already writes to stderr; redirecting it into a logger doubles every line.
        "worker_redirect_stdouts": False,
        # Tasks running when the broker connection drops cannot be acked: cancel them so they
        # are redelivered (the behaviour Celery 6 makes the default).
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_send_task_events": False,
        "task_default_queue": names["harvest"],
        "task_queues": [Queue(name) for name in dict.fromkeys(names.values())],
        "task_routes": (route,),
        "task_create_missing_queues": False,
        "beat_schedule": {
            "dispatch": {
                "task": "harvest.dispatch",
                "schedule": timing.dispatch_interval,
                "options": {"expires": timing.dispatch_interval},
            },
            # Incidents of the anomalies scored since the last pass (harvester.correlation).
            "correlate": {
                "task": "score.correlate",
                "schedule": timing.dispatch_interval,
                "options": {"expires": timing.dispatch_interval},
            },
            # Drains the notification outbox (harvester.notify.deliver).
            "notify": {
                "task": "notify.send",
                "schedule": timing.dispatch_interval,
                "options": {"expires": timing.dispatch_interval},
            },
        },
        "beat_scheduler": "schedules.scheduler:LeaderScheduler",
        "beat_max_loop_interval": min(5.0, timing.dispatch_interval),
    }


def make_app(settings: Settings | None = None) -> Celery:
    """Build the Celery app; settings are read when Celery first needs its configuration.

    ``celery -A workers.app`` imports this module, so the environment must not be read at
    import: the configuration is a promise that Celery resolves on first use.
    """
    _register_serializer()
    app = Celery("audit-harvester", include=["workers.tasks"])
    app.add_defaults(lambda: celery_config(settings or load_settings()))
    return app


# --- the world of each process ----------------------------------------------------------------

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """This process's world, built after fork on first use."""
    global _runtime  # noqa: PLW0603  one world per process, by design
    if _runtime is None:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        _runtime = Runtime.build(settings)
    return _runtime


def timing() -> FleetTiming:
    return FleetTiming.from_settings(runtime().settings)


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    # With a receiver here Celery installs no handler of its own: every line is written
    # once, in our format and through the redacting filter, by workers and beat alike.
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    for name in TASK_LINE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TaskLineLevels) for f in logger.filters):
            logger.addFilter(TaskLineLevels())


# Celery's per-task lines ("received", "succeeded", "retry"): the trace in the pool process,
# the strategy in the main process. Both pass the task's name and id as ``record.data``.
TASK_LINE_LOGGERS = ("celery.app.trace", "celery.worker.strategy")
# Tasks that run once per batch: their received/succeeded lines are DEBUG, not INFO.
PER_BATCH_TASKS = ("score.",)
_DEGRADED_RESULTS = ("'status': 'degraded'", "'gave_up': True")
# Tasks whose first argument is a source id (Celery passes the arguments as their repr).
SOURCE_TASKS = ("harvest.source", "harvest.object")
_SOURCE_ARG = re.compile(r"^[(\[](\d+)\b")


class TaskLineLevels(logging.Filter):
    """Gives Celery's per-task lines the level they deserve, and the task id for JSON logs.

    A score worker writes two INFO lines per batch (thousands an hour: noise), so theirs go
    to DEBUG; a harvest that ended degraded or gave up "succeeded" for Celery, but is a
    WARNING for an operator.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if not isinstance(data, dict):
            return True
        record.task_id = data.get("id")
        name = str(data.get("name", ""))
        source = _SOURCE_ARG.match(str(data.get("args", "")))
        if name in SOURCE_TASKS and source is not None:
            record.source_id = int(source[1])
        if record.levelno == logging.INFO and name.startswith(PER_BATCH_TASKS):
            _set_level(record, logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        result = str(data.get("return_value", ""))
        if record.levelno == logging.INFO and any(mark in result for mark in _DEGRADED_RESULTS):
            _set_level(record, logging.WARNING)
        return True


def _set_level(record: logging.LogRecord, level: int) -> None:
    record.levelno, record.levelname = level, logging.getLevelName(level)


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A child must not reuse the parent's connections: drop any world inherited by fork.
    global _runtime  # noqa: PLW0603
    _runtime = None
    consumed = {queue.name for queue in app.amqp.queues.consume_from.values()}
    names = queue_names(load_settings())
    metrics.worker_process_started(logical for logical, name in names.items() if name in consumed)


@signals.worker_process_shutdown.connect
def _on_shutdown(pid: int | None = None, **_: Any) -> None:
    if _runtime is not None:
        _runtime.close()
    metrics.child_exit(pid or os.getpid())


# --- probes and metrics of the worker's main process -------------------------------------------

_health = health_files_from_env()
log = logging.getLogger(__name__)


def _require_database(what: str) -> None:
    """Stop here, before Celery connects and logs "ready", when the database cannot be used.

    A worker without its database would take messages and fail every one of them; exiting
    lets the supervisor restart it (with back-off) and says why in one line.
    """
    settings = load_settings()
    problem = database_check(make_engine(settings.effective_database_url), dispose=True)()
    if problem is not None:
        log.critical("%s cannot start: %s", what, problem)
        raise SystemExit(1)


def _serve_metrics() -> None:
    port = os.environ.get(METRICS_PORT_ENV)
    if port:
        readiness = fleet_readiness(load_settings(), health=_health)
        addr = os.environ.get(METRICS_ADDR_ENV) or DEFAULT_ADDR
        start_metrics_server(int(port), addr=addr, readiness=readiness)


@signals.worker_init.connect
def _worker_init(**_: Any) -> None:
    # Before any pool process forks: stale metric files of an earlier run are wiped, and
    # the endpoint serves the sum of this run's processes.
    if _health is not None:
        _health.clear()
    _require_database("the worker")
    directory = metrics.multiprocess_dir()
    if directory is not None:
        metrics.prepare_multiprocess_dir(directory)
    _serve_metrics()


@signals.beat_init.connect
def _beat_init(**_: Any) -> None:
    _require_database("beat")
    _serve_metrics()


@signals.worker_ready.connect
def _worker_ready(**_: Any) -> None:
    if _health is not None:
        _health.mark_ready()


@signals.worker_shutting_down.connect
def _worker_shutting_down(**_: Any) -> None:
    if _health is not None:
        _health.mark_not_ready()


@signals.worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    if _health is not None:
        _health.clear()


class HealthHeartbeat(bootsteps.StartStopStep):
    """Touches the heartbeat file from the worker's own event loop: if the loop hangs, the
    file goes stale and the liveness probe restarts the worker (no `celery inspect ping`)."""

    requires = ("celery.worker.components:Timer",)

    def start(self, worker: Any) -> None:
        self.timer = None
        if _health is not None:
            self.timer = worker.timer.call_repeatedly(HEARTBEAT_INTERVAL, _health.beat)

    def stop(self, worker: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()


app = make_app()
app.steps["worker"].add(HealthHeartbeat)
