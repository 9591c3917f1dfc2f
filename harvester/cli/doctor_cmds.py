"""``harvester doctor``: check that each source can be harvested, and say what to fix."""

from __future__ import annotations

from typing import Annotated

import typer

from harvester.aws.doctor import (
    DoctorReport,
    render_table,
    report_to_json,
    run_doctor,
    summary_line,
)
from harvester.aws.identity import source_info_from_row
from harvester.aws.session import SessionFactory
from harvester.cli.context import AppContext
from harvester.cli.output import OutputFormat, console, print_json
from harvester.inventory import service
from harvester.inventory import validation as v


def doctor(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SOURCE]...", help="Source ids, ACCOUNT or ACCOUNT/CLUSTER."),
    ] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Check every enabled source.")] = False,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    summary: Annotated[
        bool,
        typer.Option(
            "--summary", help="One line per source: its status and, unless ok, the first cause."
        ),
    ] = False,
) -> None:
    """Check credentials, AssumeRole, bucket, listing, layout, reads, policies and encryption.

    Each step is ok, warn, fail or skip, with the reason and the fix (--summary: one line
    per source; JSON output is always complete). The exit status is 1 when any step of
    any source fails.
    """
    app = ctx.find_object(AppContext)
    assert app is not None
    if not sources and not all_sources:
        raise v.InvalidValue("SOURCE", None, "name one or more sources, or give --all")
    with app.session() as session:
        rows = (
            [s for s in service.list_sources(session) if s.enabled]
            if all_sources
            else [service.find_source(session, ref) for ref in sources or []]
        )
        infos = [
            source_info_from_row(
                row, secret_box=app.box, default_external_id=app.settings.external_id
            )
            for row in rows
        ]
    factory = SessionFactory()
    reports: list[DoctorReport] = [
        run_doctor(info, session_factory=factory, clock=app.clock) for info in infos
    ]
    if output is OutputFormat.json:
        print_json([report_to_json(r) for r in reports], sort_keys=False)
    else:
        out = console()
        for report in reports:
            if summary:
                out.print(summary_line(report), soft_wrap=True)  # one line, however long
            else:
                out.print(render_table(report))
    if any(r.status.value == "fail" for r in reports):
        raise typer.Exit(1)
