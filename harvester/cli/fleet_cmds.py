"""Running the pipeline: ``worker`` and ``beat`` for a fleet, ``run`` for one machine."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer
from celery import Celery

from harvester.cli.context import AppContext
from harvester.cli.output import console, print_table
from harvester.cli.progress import object_progress
from harvester.durations import time_or_duration
from harvester.embedded import run_cycle, run_forever
from harvester.fleet import broker_queues, queue_names
from harvester.inventory import service
from harvester.inventory import validation as v
from harvester.pipeline import (
    correlate,
    group_objects,
    harvest_objects,
    plan_backfill,
    score_batch,
)
from harvester.runtime import Runtime
from harvester.settings import Settings, load_settings
from harvester.sources.ledger import WorkItem

MetricsPortOpt = Annotated[
    int | None,
    typer.Option(help="Serve Prometheus metrics (and the /healthz, /readyz probes) on this port."),
]
MetricsAddrOpt = Annotated[
    str,
    typer.Option(help="Address the metrics port listens on; 127.0.0.1 keeps it to this machine."),
]
# Prometheus scrapes from another container or pod (metrics_cmds.DEFAULT_ADDR, not imported:
# the metrics stack is only loaded by the processes that serve it).
METRICS_ADDR = "0.0.0.0"  # noqa: S104


def _exec_celery(
    argv: list[str], *, metrics_port: int | None, metrics_addr: str, multiprocess: bool
) -> None:
    # Replace this process with Celery's own command, so that `harvester worker` and
    # `celery -A workers.app worker` are the same program (signals, exit codes, pid).
    env = dict(os.environ)
    if metrics_port is not None:
        env["HARVESTER_METRICS_PORT"] = str(metrics_port)
        env["HARVESTER_METRICS_ADDR"] = metrics_addr
        if multiprocess and "PROMETHEUS_MULTIPROC_DIR" not in env:
            # Must be in the environment before prometheus_client is imported by Celery.
            data_dir = load_settings(env).data_dir
            env["PROMETHEUS_MULTIPROC_DIR"] = str(data_dir / "metrics")
    os.execve(  # noqa: S606
        sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", *argv], env
    )


def send_objects(settings: Settings, *, source_id: int, items: Sequence[WorkItem]) -> int:
    """Queue harvest.object tasks by name (the CLI does not import the workers), grouped as
    the pipeline groups them, on the configured harvest queue."""
    client = Celery("audit-harvester-client", broker=settings.broker_url)
    try:
        for group in group_objects(items):
            client.send_task(
                "harvest.object",
                args=(source_id, [[item.key, item.etag] for item in group]),
                queue=queue_names(settings)["harvest"],
                serializer="json",
            )
    finally:
        client.close()
    return len(items)


def _ctx(ctx: typer.Context) -> AppContext:
    app = ctx.find_object(AppContext)
    assert app is not None
    return app


def worker(
    queues: Annotated[
        str,
        typer.Option(
            help="Comma-separated queues to consume: harvest, score, notify (logical names,"
            " mapped to HARVESTER_HARVEST_QUEUE, HARVESTER_SCORE_QUEUE, HARVESTER_NOTIFY_QUEUE)."
        ),
    ] = "harvest,score,notify",
    concurrency: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core).")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    metrics_port: MetricsPortOpt = None,
    metrics_addr: MetricsAddrOpt = METRICS_ADDR,
) -> None:
    """Start a Celery worker (prefork) on the broker from HARVESTER_BROKER_URL.

    The same as: celery -A workers.app worker -Q harvest,score -c N, with the queues'
    configured names after -Q. With --metrics-port,
    Prometheus metrics of all its processes are served there (multiprocess mode, in
    PROMETHEUS_MULTIPROC_DIR or <data dir>/metrics), with /healthz and /readyz probes.
    A worker whose database cannot be reached, or is not at this version's schema, exits
    with status 1 before it takes any message.
    """
    try:
        consumed = broker_queues(queues, load_settings())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--queues") from None
    argv = ["worker", "-Q", ",".join(consumed), "--loglevel", loglevel, "-P", "prefork"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    _exec_celery(argv, metrics_port=metrics_port, metrics_addr=metrics_addr, multiprocess=True)


def beat(
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    metrics_port: MetricsPortOpt = None,
    metrics_addr: MetricsAddrOpt = METRICS_ADDR,
) -> None:
    """Start the scheduler; run two for availability, a Redis leader lock keeps one active.

    The same as: celery -A workers.app beat
    """
    _exec_celery(
        ["beat", "--loglevel", loglevel],
        metrics_port=metrics_port,
        metrics_addr=metrics_addr,
        multiprocess=False,
    )


def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One cycle, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between cycles.")] = 30.0,
) -> None:
    """Harvest and score in this process, without a broker (the embedded default).

    Every due source is listed, its new objects parsed and scored, with the same functions
    the fleet's tasks call. Detector baselines and seen event ids are the fleet's, in Redis,
    when HARVESTER_REDIS_URL is set; otherwise they are kept in a file beside the database,
    so runs from cron learn from each other.
    """
    app = _ctx(ctx)
    app.ensure_schema()
    rt = Runtime.build(app.settings, clock=app.clock, embedded=True)
    try:
        if not once:
            run_forever(rt, interval=interval)
            return
        with object_progress("harvesting and scoring") as object_done:
            result = run_cycle(rt, on_object=object_done)
        console().print(
            f"harvested {result.sources} source(s): {result.objects} object(s), "
            f"{result.events} event(s), {result.anomalies} anomaly update(s)"
            + (f", {result.incidents} incident update(s)" if result.incidents else "")
            + (f", {result.corrupt} corrupt" if result.corrupt else "")
            + (f", {result.failed} failed" if result.failed else ""),
            markup=False,
        )
        for line in result.degraded:
            console().print(f"degraded: {line}", markup=False)
        for line in result.silent:
            console().print(f"silent: {line}", markup=False)
    finally:
        rt.close()


def _parse_time(value: str, option: str, now: datetime) -> datetime:
    try:
        return time_or_duration(value, now)
    except ValueError as exc:
        raise v.InvalidValue(option, value, str(exc)) from None


def backfill(
    ctx: typer.Context,
    source_ref: Annotated[
        str, typer.Argument(metavar="SOURCE", help="Source id, ACCOUNT or ACCOUNT/CLUSTER.")
    ],
    since: Annotated[
        str,
        typer.Option(help="Start of the range: a time (ISO 8601, UTC if no zone) or 6h, 2d back."),
    ],
    until: Annotated[
        str | None, typer.Option(help="End of the range: a time or a duration back (default: now).")
    ] = None,
    enqueue: Annotated[
        bool, typer.Option("--enqueue", help="Send the objects to the fleet's queue instead.")
    ] = False,
) -> None:
    """Harvest a time range of a source again, including objects already processed.

    Scoring de-duplicates events by id with the fleet's state when HARVESTER_REDIS_URL is
    set (the embedded default's state file otherwise), so a backfill adds only what was
    missing: events scored within the de-duplication window are not scored again.
    """
    app = _ctx(ctx)
    start = _parse_time(since, "--since", app.clock())
    end = _parse_time(until, "--until", app.clock()) if until else app.clock()
    if end < start:
        raise v.InvalidValue("--until", until, "the end of the range is before its start")
    with app.session() as session:
        source_id = service.find_source(session, source_ref).id
    rt = Runtime.build(app.settings, clock=app.clock, embedded=not enqueue)
    try:
        plan = plan_backfill(rt, source_id=source_id, since=start, until=end)
        out = console()
        out.print(f"listed {plan.listed} key(s); {len(plan.objects)} object(s) in the range")
        pairs = [(item.key, item.etag) for item in plan.objects]
        if enqueue:
            sent = send_objects(app.settings, source_id=source_id, items=plan.objects)
            queue = queue_names(app.settings)["harvest"]
            out.print(f"sent {sent} object(s) to the harvest queue ({queue})", markup=False)
            return

        def emit(body: bytes, _count: int) -> None:
            score_batch(rt, body=body)

        done = harvest_objects(rt, source_id=source_id, objects=pairs, emit=emit)
        correlate(rt)
        summary = done.summary()
        print_table(
            "Backfill",
            ["objects", "events", "done", "corrupt", "failed"],
            [
                [
                    len(done.objects),
                    summary["events"],
                    summary.get("done", 0),
                    summary.get("corrupt", 0),
                    summary.get("failed", 0),
                ]
            ],
        )
    finally:
        rt.close()


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("beat")(beat)
    app.command("run")(run)
    app.command("backfill")(backfill)
