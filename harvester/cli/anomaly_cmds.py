"""Triage commands: anomalies, incidents, suppressions.

The lead registers the three apps on the main CLI::

    app.add_typer(anomalies_app, name="anomalies")
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(suppress_app, name="suppress")
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from harvester.cli.context import AppContext
from harvester.cli.output import OutputFormat, console, emit, print_json, print_table, when
from harvester.clock import Clock
from harvester.db.anomaly_models import SuppressionRecord
from harvester.detect import repository as repo
from harvester.detect.engine import DEFAULT_CATALOG
from harvester.detect.model import Severity
from harvester.detect.render import FINDING_COLUMNS, anomaly_record, incident_record
from harvester.durations import time_or_duration
from harvester.inventory.validation import InvalidValue, account_id

__all__ = ["anomalies_app", "incidents_app", "suppress_app"]

OutputOpt = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts.")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only what was seen since: a duration back from now (24h, 7d) or a time."
    ),
]
SeverityOpt = Annotated[
    str | None,
    typer.Option("--severity", help="Minimum severity: info, low, medium, high or critical."),
]

anomalies_app = typer.Typer(help="Anomalies the detectors raised.", no_args_is_help=True)
incidents_app = typer.Typer(
    help="Incidents: anomalies of one identity that form an attack chain.", no_args_is_help=True
)
suppress_app = typer.Typer(
    help="Suppression rules: detectors muted for a principal, an account, for a while.",
    no_args_is_help=True,
)


def _ctx(ctx: typer.Context) -> AppContext:
    app_ctx = ctx.find_object(AppContext)
    assert app_ctx is not None, "the main callback builds the context"
    return app_ctx


def _time(value: str, field: str, clock: Clock, *, future: bool) -> datetime:
    """A duration from now (back for --since, ahead for --until) or an ISO 8601 time."""
    try:
        return time_or_duration(value, clock(), future=future)
    except ValueError as exc:
        raise InvalidValue(field, value, str(exc)) from None


def _severity(value: str | None) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity.parse(value)
    except ValueError:
        raise InvalidValue("--severity", value, "use info, low, medium, high or critical") from None


# --- anomalies --------------------------------------------------------------------------------


@anomalies_app.command("list")
def anomalies_list(
    ctx: typer.Context,
    since: SinceOpt = None,
    severity: SeverityOpt = None,
    account: Annotated[str | None, typer.Option("--account", help="One account id.")] = None,
    detector: Annotated[
        str | None, typer.Option("--detector", help="A detector id; * as a wildcard.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="open or acked (default: both).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 200,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """List anomalies, newest first."""
    app = _ctx(ctx)
    start = _time(since, "--since", app.clock, future=False) if since else None
    with app.session() as session:
        anomalies = repo.list_anomalies(
            session,
            since=start,
            min_severity=_severity(severity),
            account=account_id(account, "--account") if account is not None else None,
            detector=detector,
            status=status,
            limit=limit,
        )
    records = [anomaly_record(a) for a in anomalies]
    if output is OutputFormat.json:
        print_json(records)
        return
    rows = [
        {**r, "first_seen": when(a.first_seen)} for r, a in zip(records, anomalies, strict=True)
    ]
    emit(output, rows, [*FINDING_COLUMNS, "status"], "Anomalies")


def _show_lines(pairs: list[tuple[str, Any]]) -> None:
    out = console()
    for key, value in pairs:
        out.print(f"{key:>14}: {'-' if value is None or value == '' else value}", markup=False)


@anomalies_app.command("show")
def anomalies_show(
    ctx: typer.Context,
    anomaly_id: Annotated[str, typer.Argument(metavar="ID", help="The id (or its beginning).")],
    output: OutputOpt = OutputFormat.table,
) -> None:
    """Show one anomaly: what, why (explanation with the baseline), and the evidence events."""
    app = _ctx(ctx)
    with app.session() as session:
        anomaly = repo.get_anomaly(session, anomaly_id=anomaly_id)
    record = anomaly_record(anomaly)
    if output is OutputFormat.json:
        print_json(record)
        return
    _show_lines(
        [
            ("id", anomaly.id),
            ("title", anomaly.title),
            ("detector", f"{anomaly.detector} v{anomaly.detector_version}"),
            ("severity", f"{anomaly.severity} (score {anomaly.score})"),
            ("status", anomaly.status),
            ("principal", anomaly.principal),
            ("identity", anomaly.identity),
            ("account", anomaly.account_id),
            ("region", anomaly.region),
            ("cluster", anomaly.cluster),
            ("source ip", anomaly.source_ip),
            ("first seen", when(anomaly.first_seen)),
            ("last seen", when(anomaly.last_seen)),
            ("count", anomaly.count),
            ("mitre", ", ".join((*anomaly.mitre_tactics, *anomaly.mitre_techniques))),
        ]
    )
    out = console()
    out.print("")
    out.print(anomaly.explanation, markup=False, soft_wrap=True)
    out.print("")
    print_table(
        f"Evidence ({len(anomaly.evidence)} of {anomaly.count} events)",
        ["time", "event_id", "action", "bucket", "key", "index"],
        [[when(e.time), e.event_id, e.action, e.bucket, e.key, e.index] for e in anomaly.evidence],
    )


@anomalies_app.command("ack")
def anomalies_ack(
    ctx: typer.Context,
    anomaly_id: Annotated[str, typer.Argument(metavar="ID")],
    by: Annotated[str | None, typer.Option("--by", help="Who acknowledges it.")] = None,
) -> None:
    """Acknowledge an anomaly: it stays, marked as seen; new occurrences still raise its count."""
    app = _ctx(ctx)
    with app.session() as session:
        anomaly = repo.ack_anomaly(session, anomaly_id=anomaly_id, clock=app.clock, by=by)
    console().print(f"acknowledged {anomaly.id} ({anomaly.title})", markup=False)


@anomalies_app.command("detectors")
def anomalies_detectors(ctx: typer.Context, output: OutputOpt = OutputFormat.table) -> None:
    """List the detectors of the catalog (ids to use with --detector and suppress add)."""
    records = [
        {
            "id": spec.id,
            "version": spec.version,
            "kind": spec.kind,
            "sources": ",".join(sorted(spec.sources)),
            "severity": spec.severity.value,
            "title": spec.title,
            "mitre": ",".join((*spec.tactics, *spec.techniques)),
            "description": spec.description,
            "parameters": dict(spec.parameters),
        }
        for spec in DEFAULT_CATALOG.specs()
    ]
    emit(output, records, ["id", "kind", "sources", "severity", "title", "mitre"], "Detectors")


# --- incidents --------------------------------------------------------------------------------


@incidents_app.command("list")
def incidents_list(
    ctx: typer.Context,
    since: SinceOpt = None,
    severity: SeverityOpt = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """List incidents, newest first."""
    app = _ctx(ctx)
    start = _time(since, "--since", app.clock, future=False) if since else None
    with app.session() as session:
        incidents = repo.list_incidents(
            session, since=start, min_severity=_severity(severity), limit=limit
        )
    records = [incident_record(i) for i in incidents]
    if output is OutputFormat.json:
        print_json(records)
        return
    rows = [
        {**r, "first_seen": when(i.first_seen)} for r, i in zip(records, incidents, strict=True)
    ]
    emit(
        output,
        rows,
        ["severity", "score", "title", "identity", "account_id", "first_seen", "count", "id"],
        "Incidents",
    )


@incidents_app.command("show")
def incidents_show(
    ctx: typer.Context,
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    output: OutputOpt = OutputFormat.table,
) -> None:
    """Show an incident and the anomalies that make it up."""
    app = _ctx(ctx)
    with app.session() as session:
        incident, anomalies = repo.get_incident(session, incident_id=incident_id)
    record = incident_record(incident, {a.id: a for a in anomalies})
    if output is OutputFormat.json:
        print_json({**record, "anomalies": [anomaly_record(a) for a in anomalies]})
        return
    _show_lines(
        [
            ("id", incident.id),
            ("title", incident.title),
            ("severity", f"{incident.severity} (score {incident.score})"),
            ("status", incident.status),
            ("identity", incident.identity),
            ("accounts", ", ".join(incident.account_ids)),
            ("clusters", ", ".join(incident.clusters)),
            ("first seen", when(incident.first_seen)),
            ("last seen", when(incident.last_seen)),
        ]
    )
    console().print("\n" + incident.explanation + "\n", markup=False, soft_wrap=True)
    print_table(
        "Anomalies",
        ["first_seen", "severity", "detector", "title", "count", "id"],
        [
            [when(a.first_seen), a.severity.value, a.detector, a.title, a.count, a.id]
            for a in anomalies
        ],
    )


@incidents_app.command("ack")
def incidents_ack(
    ctx: typer.Context, incident_id: Annotated[str, typer.Argument(metavar="ID")]
) -> None:
    """Acknowledge an incident."""
    app = _ctx(ctx)
    with app.session() as session:
        incident = repo.ack_incident(session, incident_id=incident_id, clock=app.clock)
    console().print(f"acknowledged {incident.id}", markup=False)


# --- suppressions -----------------------------------------------------------------------------


def _suppression_record(record: SuppressionRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": record.id,
        "detector": record.detector,
        "principal": record.principal,
        "account_id": record.account_id,
        "until": when(record.until) if record.until else "forever",
        "active": record.until is None or record.until > now,
        "reason": record.reason,
        "created_at": when(record.created_at),
    }


@suppress_app.command("add")
def suppress_add(
    ctx: typer.Context,
    detector: Annotated[
        str, typer.Option("--detector", help="Detector id (see 'anomalies detectors'); * for all.")
    ],
    principal: Annotated[
        str | None,
        typer.Option("--principal", help="An ARN, identity or Kubernetes user; * wildcards."),
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only in this account.")] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="A duration from now (7d) or a time; default: forever."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the next person.")
    ] = None,
) -> None:
    """Mute a detector; the scorer drops matching anomalies from then on.

    Running score workers read suppressions once a minute: allow that long before it holds.
    """
    app = _ctx(ctx)
    known = {spec.id for spec in DEFAULT_CATALOG.specs()}
    if detector != "*" and "*" not in detector and detector not in known:
        raise InvalidValue("--detector", detector, "no such detector (see 'anomalies detectors')")
    end = _time(until, "--until", app.clock, future=True) if until else None
    if end is not None and end <= app.clock():
        raise InvalidValue("--until", until, "the end of a suppression must be in the future")
    with app.session() as session:
        record = repo.add_suppression(
            session,
            detector=detector,
            principal=principal,
            account=account,
            until=end,
            reason=reason,
            clock=app.clock,
        )
        suppression_id = record.id
    scope = " for " + principal if principal else ""
    scope += f" in account {account}" if account else ""
    ending = f" until {when(end)}" if end else ""
    console().print(f"added suppression {suppression_id}: {detector}{scope}{ending}", markup=False)


@suppress_app.command("list")
def suppress_list(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only rules still in force.")] = False,
    output: OutputOpt = OutputFormat.table,
) -> None:
    """List suppression rules."""
    app = _ctx(ctx)
    now = app.clock()
    with app.session() as session:
        records = [
            _suppression_record(r, now)
            for r in repo.list_suppressions(session, now=now if active else None)
        ]
    emit(
        output,
        records,
        ["id", "detector", "principal", "account_id", "until", "active", "reason"],
        "Suppressions",
    )


@suppress_app.command("remove")
def suppress_remove(
    ctx: typer.Context, suppression_id: Annotated[int, typer.Argument(metavar="ID")]
) -> None:
    """Delete a suppression rule."""
    app = _ctx(ctx)
    with app.session() as session:
        repo.remove_suppression(session, suppression_id=suppression_id)
    console().print(f"removed suppression {suppression_id}")
