"""``harvester demo``: the whole pipeline on a generated organization, on this machine."""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from harvester.cli.context import AppContext
from harvester.cli.inventory_cmds import SOURCE_COLUMNS, source_record
from harvester.cli.output import OutputFormat, console, emit
from harvester.cli.progress import object_progress
from harvester.db.engine import make_engine
from harvester.db.migrate import upgrade
from harvester.demo import (
    apply_environment,
    demo_environment,
    demo_inventory,
    demo_silence,
    demo_start,
    moto_server,
    seed_bucket,
)
from harvester.detect.model import Severity
from harvester.detect.render import render_findings
from harvester.detect.repository import list_anomalies, list_incidents
from harvester.embedded import run_cycle
from harvester.inventory import service
from harvester.inventory.plan import apply
from harvester.runtime import Runtime
from harvester.settings import load_settings
from harvester.synth.org import default_org


def demo(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, max=30, help="Days of activity to generate.")] = 14,
    scale: Annotated[
        float, typer.Option(min=0.05, max=4.0, help="Volume of normal activity.")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="The generator's seed: same seed, same logs.")] = 7,
) -> None:
    """Generate an organization's logs into a local moto S3, harvest and score them.

    Two weeks of CloudTrail (an organization trail over four accounts) and EKS audit logs
    (Firehose objects) with attacks injected in the second week; the same pipeline functions
    the fleet runs; a fresh SQLite database under <data dir>/demo/. Nothing leaves the machine.
    """
    app = ctx.find_object(AppContext)
    assert app is not None
    out = console()
    started = time.monotonic()
    demo_dir = app.settings.data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    database = demo_dir / "demo.db"
    for stale in demo_dir.glob("demo.db*"):
        stale.unlink()
    now = app.clock()
    start = demo_start(now, days)
    settings = load_settings(
        overrides_from(app),
        database_url=f"sqlite:///{database}",
        first_harvest_lookback=f"{days + 1}d",
        **demo_silence(now, start, days),
    )
    org = default_org(seed)
    with moto_server() as url:
        apply_environment(demo_environment(url))
        out.print(f"moto S3 on {url}; generating {days} days of an organization's logs ...")
        seeded = seed_bucket(url, org, start=start, days=days, scale=scale, progress=out.print)
        out.print(
            f"seeded {seeded.objects} objects: {seeded.records} records, "
            f"{seeded.attack_records} of them from injected attacks "
            f"({time.monotonic() - started:.0f}s)"
        )
        engine = make_engine(settings.effective_database_url)
        upgrade(engine)
        engine.dispose()
        rt = Runtime.build(settings, clock=app.clock, embedded=True)
        try:
            with rt.sessions.begin() as session:
                apply(session, demo_inventory(org), box=rt.box, clock=app.clock)
            out.print("harvesting and scoring ...")
            harvest_started = time.monotonic()  # seeding is timed apart, above
            with object_progress("harvesting and scoring") as object_done:
                result = run_cycle(rt, on_object=object_done)
            out.print(
                f"harvested {result.objects} objects, {result.events} events "
                f"({result.corrupt} corrupt, {result.failed} failed) "
                f"in {time.monotonic() - harvest_started:.0f}s"
            )
            with rt.sessions() as session:
                sources = [source_record(s, app.clock()) for s in service.list_sources(session)]
                anomalies = list_anomalies(session, limit=1000)
                incidents = list_incidents(session)
        finally:
            rt.close()
    emit(OutputFormat.table, sources, SOURCE_COLUMNS, "Sources")
    # Info findings are habits and context (an actor doing what it does every day): kept in
    # the database, left out of the table so the alerts stand out.
    alerts = [a for a in anomalies if a.severity is not Severity.info]
    render_findings(alerts, incidents, "table")
    out.print(
        f"{len(alerts)} anomalies shown, {len(anomalies) - len(alerts)} of severity info not "
        f"shown, {len(incidents)} incidents; the database is {database} "
        f"(HARVESTER_DATABASE_URL=sqlite:///{database} harvester anomalies list). "
        f"Total {time.monotonic() - started:.0f}s."
    )


def overrides_from(app: AppContext) -> dict[str, str]:
    """The caller's environment, so the demo honours HARVESTER_DATA_DIR and friends.

    Not HARVESTER_REDIS_URL: the demo's detector state stays beside its own database rather
    than mixing its made-up organization into a fleet's baselines.
    """
    environ = {k: v for k, v in os.environ.items() if k != "HARVESTER_REDIS_URL"}
    return environ | {"HARVESTER_DATA_DIR": str(app.settings.data_dir)}
