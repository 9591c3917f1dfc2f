"""The Celery app: queues, routes, limits, the batch serializer, and the world after fork.

Start workers with ``harvester worker`` or ``celery -A workers.app worker -Q harvest,score``,
and beat with ``harvester beat`` or ``celery -A workers.app beat`` (the leader-locked scheduler
is configured).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from celery import Celery, signals
from kombu import Queue
from kombu.serialization import register

from harvester.logs import configure_logging
from harvester.runtime import Runtime
from harvester.settings import Settings, load_settings

SERIALIZER = "harvester-msgpack"
HARVEST_QUEUE = "harvest"
SCORE_QUEUE = "score"

# Limits, in seconds. The broker's visibility timeout must exceed the hard limit (or Redis
# hands a running task to a second worker), and the source lease sits between the two.
SOFT_TIME_LIMIT = 240
HARD_TIME_LIMIT = 300
SOURCE_LEASE_TTL = timedelta(seconds=HARD_TIME_LIMIT + 60)
VISIBILITY_TIMEOUT = HARD_TIME_LIMIT + 600
MAX_DELIVERIES = 5
MAX_MEMORY_PER_CHILD_KIB = 1_000_000
DISPATCH_INTERVAL = 30.0


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
    transport = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # The redis transport re-reads its unacked index at this interval.
        "unacked_restore_limit": 1000,
    }
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
        "task_soft_time_limit": SOFT_TIME_LIMIT,
        "task_time_limit": HARD_TIME_LIMIT,
        "worker_max_memory_per_child": MAX_MEMORY_PER_CHILD_KIB,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_default_queue": HARVEST_QUEUE,
        "task_queues": [Queue(HARVEST_QUEUE), Queue(SCORE_QUEUE)],
        "task_routes": {
            "harvest.*": {"queue": HARVEST_QUEUE},
            "score.*": {"queue": SCORE_QUEUE},
        },
        "task_create_missing_queues": False,
        "beat_schedule": {
            "dispatch": {
                "task": "harvest.dispatch",
                "schedule": DISPATCH_INTERVAL,
                "options": {"expires": DISPATCH_INTERVAL},
            }
        },
        "beat_scheduler": "schedules.scheduler:LeaderScheduler",
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
        configure_logging(settings.log_level)
        _runtime = Runtime.build(settings)
    return _runtime


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A child must not reuse the parent's connections: drop any world inherited by fork.
    global _runtime  # noqa: PLW0603
    _runtime = None


@signals.worker_process_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    if _runtime is not None:
        _runtime.close()


app = make_app()
