"""The Celery app: queues, routes, limits, the batch serializer, and the world after fork.

Start workers with ``harvester worker`` or ``celery -A workers.app worker -Q harvest,score``,
and beat with ``harvester beat`` or ``celery -A workers.app beat`` (the leader-locked scheduler
is configured). Queue names and limits come from settings (see ``harvester.fleet``).
"""

from __future__ import annotations

from typing import Any

import msgspec
from celery import Celery, signals
from kombu import Queue
from kombu.serialization import register

from harvester.fleet import FleetTiming
from harvester.logs import configure_logging
from harvester.runtime import Runtime
from harvester.settings import Settings, load_settings

SERIALIZER = "harvester-msgpack"
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


def queue_names(settings: Settings) -> dict[str, str]:
    return {"harvest": settings.harvest_queue, "score": settings.score_queue}


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
            }
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
        configure_logging(settings.log_level)
        _runtime = Runtime.build(settings)
    return _runtime


def timing() -> FleetTiming:
    return FleetTiming.from_settings(runtime().settings)


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
