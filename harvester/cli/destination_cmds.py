"""``harvester destinations``: where findings are sent (declared in the inventory file)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from harvester.cli.context import AppContext
from harvester.cli.output import OutputFormat, console, emit, when
from harvester.db.notify_models import NotificationRecord
from harvester.durations import format_duration
from harvester.notify import store
from harvester.notify.deliver import send_one
from harvester.notify.run import context, test_delivery
from harvester.runtime import Runtime

__all__ = ["destinations_app"]

destinations_app = typer.Typer(
    help="Notification destinations: list them, send a test finding.",
    no_args_is_help=True,
)
COLUMNS = ("name", "type", "enabled", "min_severity", "kinds", "pending", "dead", "last_sent")


def _app(ctx: typer.Context) -> AppContext:
    return ctx.find_object(AppContext) or AppContext.from_environment()


@destinations_app.command("list")
def list_destinations(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts.")
    ] = OutputFormat.table,
) -> None:
    """Each destination with its routing and delivery counts. Secrets are never shown."""
    app = _app(ctx)
    records: list[dict[str, Any]] = []
    with app.session() as session:
        counts = {
            (name, status): (n, latest)
            for name, status, n, latest in session.execute(
                select(
                    NotificationRecord.destination,
                    NotificationRecord.status,
                    func.count(),
                    func.max(NotificationRecord.sent_at),
                ).group_by(NotificationRecord.destination, NotificationRecord.status)
            )
        }
        for record in store.list_destinations(session):
            spec = store.destination_spec(record)
            records.append(
                {
                    "name": spec.name,
                    "type": spec.type,
                    "enabled": spec.enabled,
                    "target": spec.url or spec.topic_arn or spec.smtp_host or None,
                    "has_secret": record.secret_encrypted is not None,
                    "min_severity": spec.min_severity.value,
                    "kinds": ",".join(spec.kinds),
                    "detectors": list(spec.detectors),
                    "accounts": list(spec.accounts),
                    "clusters": list(spec.clusters),
                    "renotify_after": format_duration(spec.renotify_after),
                    "rate_limit": spec.rate_limit,
                    "pending": counts.get((spec.name, "pending"), (0, None))[0],
                    "sent": counts.get((spec.name, "sent"), (0, None))[0],
                    "dead": counts.get((spec.name, "dead"), (0, None))[0],
                    "last_sent": when(counts.get((spec.name, "sent"), (0, None))[1]),
                    "paused_until": when(record.paused_until),
                }
            )
    if not records and output is OutputFormat.table:
        console().print("no destinations: declare them under destinations: in the inventory file")
        return
    emit(output, records, COLUMNS, "Destinations")


@destinations_app.command("test")
def test_destination(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The destination's name.")],
) -> None:
    """Send a clearly marked test finding to NAME now and print the receiver's answer.

    Nothing is written to the outbox; routing filters do not apply. Exits 1 when the
    receiver did not accept it.
    """
    app = _app(ctx)
    rt = Runtime.build(app.settings, clock=app.clock)
    try:
        with rt.sessions() as session:
            spec = store.destination_spec(store.get_destination(session, name=name), box=rt.box)
        now = rt.clock()
        outcome, latency = send_one(spec, test_delivery(spec, now), context(rt, now))
    finally:
        rt.close()
    status = f"HTTP {outcome.http_status}" if outcome.http_status else outcome.label
    verdict = "accepted" if outcome.ok else "NOT accepted"
    # Plain print: scripts read this, and rich would wrap the receiver's answer.
    print(f"{name} ({spec.type}): {verdict}, {status}, {latency * 1000:.0f} ms")
    if outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)
    if outcome.answer:
        print(f"answer: {outcome.answer}")
    if not outcome.ok:
        raise typer.Exit(1)
