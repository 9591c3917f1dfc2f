"""``harvester metrics serve``, and the metrics endpoint of workers and beat.

Two kinds of endpoint, scraped separately:

- each worker (its main process) and beat serve their own metrics with
  :func:`start_metrics_server`: what they did (objects, events, errors, durations). A
  prefork worker serves the sum of its processes' files (multiprocess mode).
- ``harvester metrics serve`` (one per fleet) serves what only the database and the broker
  know: sources by health, lag, stale sources, open anomalies, queue lengths.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Annotated, Final

import typer
from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from redis import Redis

from harvester.cli.context import AppContext
from harvester.db.engine import make_engine, session_factory
from harvester.fleet import queue_names
from harvester.metrics import (
    MULTIPROC_ENV,
    BuildInfoCollector,
    QueueCollector,
    multiprocess_active,
    multiprocess_dir,
    multiprocess_registry,
)
from harvester.metrics_inventory import InventoryCollector, InventoryConfig
from harvester.probes import Readiness, database_check, probe_app, redis_check, start_probe_server
from harvester.settings import Settings

__all__ = ["DEFAULT_PORT", "inventory_registry", "metrics_app", "start_metrics_server"]

DEFAULT_PORT: Final = 9108
# Prometheus scrapes from another container or pod: listen on every interface.
DEFAULT_ADDR: Final = "0.0.0.0"  # noqa: S104

metrics_app = typer.Typer(
    help="Prometheus metrics: the fleet's inventory gauges.", no_args_is_help=True
)


@metrics_app.callback()
def _metrics_group() -> None:
    """Prometheus metrics: the fleet's inventory gauges."""
    # A callback keeps "serve" a subcommand: Typer runs a one-command app as that command.


_build_info_registered = threading.Lock()
_build_info_done = False


def _register_build_info(registry: CollectorRegistry) -> None:
    global _build_info_done  # noqa: PLW0603  the global registry takes one build-info collector
    if registry is not REGISTRY:
        registry.register(BuildInfoCollector())
        return
    with _build_info_registered:
        if not _build_info_done:
            registry.register(BuildInfoCollector())
            _build_info_done = True


def start_metrics_server(
    port: int, *, addr: str = DEFAULT_ADDR, readiness: Readiness | None = None
) -> None:
    """Serve this process's metrics on ``port`` from a daemon thread, and return.

    ``/metrics``, plus ``/healthz`` and ``/readyz`` answered by ``readiness`` (none: alive and
    ready as long as the process serves); any other path is 404.

    Call it in a Celery worker's main process (``worker_init``) or in beat. With
    ``PROMETHEUS_MULTIPROC_DIR`` set it serves the sum of every worker process's files (the
    directory must have been prepared, see ``harvester.metrics.prepare_multiprocess_dir``);
    otherwise the metrics of this process.
    """
    directory = multiprocess_dir()
    registry: CollectorRegistry
    if directory is not None:
        if not multiprocess_active():
            # The pool's processes inherit this process's storage when they fork: they would
            # write nothing to the directory, and the endpoint would be silently empty.
            raise RuntimeError(
                f"{MULTIPROC_ENV} was set after prometheus_client was imported; set it in the "
                "environment that starts this process"
            )
        registry = multiprocess_registry(directory)
    else:
        registry = REGISTRY
    _register_build_info(registry)
    app = probe_app(make_wsgi_app(registry), readiness or Readiness())
    start_probe_server(app, port=port, addr=addr)


def inventory_registry(settings: Settings, *, config: InventoryConfig) -> CollectorRegistry:
    """The registry of ``metrics serve``: inventory from the database, queues from the broker."""
    engine = make_engine(settings.effective_database_url)
    registry = CollectorRegistry()
    registry.register(InventoryCollector(session_factory(engine), config=config))
    broker = Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
    registry.register(QueueCollector(broker, queues=queue_names(settings)))
    registry.register(BuildInfoCollector())
    return registry


def _ctx(ctx: typer.Context) -> AppContext:
    return ctx.find_object(AppContext) or AppContext.from_environment()


@metrics_app.command("serve")
def serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    addr: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_ADDR,
    per_source_limit: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="HARVESTER_METRICS_PER_SOURCE_LIMIT",
            help="Export per-source series while the inventory has at most this many sources.",
        ),
    ] = 500,
    stale_factor: Annotated[
        float,
        typer.Option(
            min=1.0,
            envvar="HARVESTER_METRICS_STALE_FACTOR",
            help="A source is stale when its last success is older than this many cadences.",
        ),
    ] = 3.0,
    cache_seconds: Annotated[
        float,
        typer.Option(min=0.0, help="Scrapes within this many seconds share one computation."),
    ] = 15.0,
) -> None:
    """Serve the inventory gauges (sources, lag, anomalies) and queue lengths for Prometheus.

    One per fleet: every scrape reads the database (at most once per --cache-seconds) and
    the broker's queue lengths. Stops on SIGTERM or Ctrl-C.
    """
    app = _ctx(ctx)
    config = InventoryConfig(
        per_source_limit=per_source_limit,
        stale_factor=stale_factor,
        default_cadence=app.settings.cadence,
        cache_seconds=cache_seconds,
    )
    registry = inventory_registry(app.settings, config=config)
    readiness = Readiness(
        {
            "database": database_check(make_engine(app.settings.effective_database_url)),
            "broker": redis_check(app.settings.broker_url, what="the broker"),
        }
    )
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        try:
            server, _thread = start_probe_server(
                probe_app(make_wsgi_app(registry), readiness), port=port, addr=addr
            )
        except OSError as exc:
            print(f"error: cannot listen on {addr}:{port}: {exc.strerror}", file=sys.stderr)
            raise typer.Exit(2) from None
        print(
            f"serving inventory metrics on http://{addr}:{port}/metrics "
            "(probes: /healthz, /readyz)",
            flush=True,
        )
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            server.server_close()
    finally:
        signal.signal(signal.SIGTERM, previous)
