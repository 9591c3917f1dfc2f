"""``harvester scan`` and ``harvester parse``: offline use on local folders or s3:// URLs."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from harvester.cli.output import print_table, when
from harvester.events import Event, encode_events
from harvester.scan import GroupSummary, ScanSummary, SourceObject, iter_scan, local_objects
from harvester.scan_limits import DEFAULT_MEMORY_MB, ScanLimits
from harvester.terminal import cell, printable

# The detection engine, boto3 (s3:// paths) and botocore's region data are imported where
# they are used, so `harvester parse` of local files starts without them.
if TYPE_CHECKING:
    from harvester.scan_s3 import S3Url


class FindingsFormat(enum.StrEnum):
    table = "table"
    jsonl = "jsonl"
    json = "json"


PathsArg = Annotated[
    list[str],
    typer.Argument(
        metavar="PATH...",
        help="Files or folders (gzip or plain, as 'aws s3 sync' leaves them) or s3://bucket/prefix.",
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(help="S3 endpoint for s3:// paths (an S3-compatible store or an emulator)."),
]


def _objects(paths: list[str], endpoint_url: str | None) -> Iterator[SourceObject]:
    # Every path is checked before the first object is read: a typo fails at once.
    urls: dict[str, S3Url] = {}
    if any(path.startswith("s3:") for path in paths):
        from harvester.scan_s3 import S3Url

        urls = {path: S3Url.parse(path) for path in paths if path.startswith("s3:")}
    for path in paths:
        if path not in urls and not Path(path).exists():
            from harvester.inventory.validation import InvalidValue

            raise InvalidValue("PATH", path, "no such file or folder")
    return _iter_objects(paths, urls, endpoint_url)


def _iter_objects(
    paths: list[str], urls: dict[str, S3Url], endpoint_url: str | None
) -> Iterator[SourceObject]:
    client = None
    for path in paths:
        if path in urls:
            from harvester.scan_s3 import s3_client, s3_objects

            client = client or s3_client(endpoint_url=endpoint_url)
            yield from s3_objects(client, urls[path])
        else:
            yield from local_objects([path])


def _with_progress(events: Iterable[Event], summary: ScanSummary) -> Iterator[Event]:
    """A progress line on a terminal (objects, MB, events/s); nothing when piped."""
    if not sys.stderr.isatty():
        yield from events
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]scanning"),
        BarColumn(bar_width=None),
        TextColumn(
            "{task.fields[objects]} objects, {task.fields[mb]:.1f} MB, {task.completed} events"
        ),
        TextColumn("{task.fields[rate]:,.0f} events/s"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("scan", total=None, objects=0, mb=0.0, rate=0.0)
        for count, event in enumerate(events, 1):
            yield event
            if count % 2000 == 0:
                elapsed = progress.tasks[0].elapsed or 1e-9
                progress.update(
                    task,
                    completed=count,
                    objects=summary.objects,
                    mb=summary.compressed_bytes / 1e6,
                    rate=count / elapsed,
                )


def _print_summary(summary: ScanSummary, *, to_stderr: bool) -> None:
    rows = []
    for (account, region), group in sorted(summary.cloudtrail.items(), key=lambda kv: str(kv[0])):
        rows.append(
            [
                "cloudtrail",
                account,
                region,
                group.objects,
                group.events,
                _principals(group),
                when(group.first),
                when(group.last),
                len(group.errors),
            ]
        )
    for (account, cluster), group in sorted(summary.clusters.items(), key=lambda kv: str(kv[0])):
        rows.append(
            [
                "eks",
                account,
                cluster,
                group.objects,
                group.events,
                _principals(group),
                when(group.first),
                when(group.last),
                len(group.errors),
            ]
        )
    columns = [
        "kind",
        "account",
        "region/cluster",
        "objects",
        "events",
        "principals",
        "first",
        "last",
        "errors",
    ]
    if to_stderr:
        console = Console(stderr=True, highlight=False)
        table = Table(title="Scanned", header_style="bold")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(cell(c) for c in row))
        console.print(table)
    else:
        print_table("Scanned", columns, rows)
    _print_problems(summary)


def _print_problems(summary: ScanSummary) -> None:
    """Objects that could not be read, and files that are no logs of ours, on stderr."""
    for error in summary.errors:
        label = "unrecognised" if error.reason == "unrecognised" else "corrupt"
        print(f"{label}: {printable(error.key)}: {printable(error.message)}", file=sys.stderr)
    if summary.unrecognised:
        print(
            f"skipped {len(summary.unrecognised)} files that are neither CloudTrail log files "
            "nor EKS Firehose objects (by name, under a folder):",
            file=sys.stderr,
        )
        for key in summary.unrecognised:
            print(f"unrecognised: {printable(key)}", file=sys.stderr)


def _exit_status(summary: ScanSummary) -> None:
    # A file named on the command line that is no log at all is the operator's mistake.
    if any(error.reason == "unrecognised" for error in summary.errors):
        raise typer.Exit(1)


def _principals(group: GroupSummary) -> str:
    count = group.distinct_principals
    return f"~{count}" if group.principals_estimated else str(count)


def scan(
    paths: PathsArg,
    output: Annotated[
        FindingsFormat,
        typer.Option("--output", "-o", help="table, jsonl (one finding per line) or json."),
    ] = FindingsFormat.table,
    endpoint_url: EndpointOpt = None,
    memory_mb: Annotated[
        int,
        typer.Option(
            help="Memory ceiling in MB, whatever the input: beyond it the least recently seen "
            "baselines are forgotten and counted. 0: no ceiling.",
            envvar="HARVESTER_SCAN_MEMORY_MB",
        ),
    ] = DEFAULT_MEMORY_MB,
) -> None:
    """Scan CloudTrail and EKS audit logs for anomalies and incidents, offline.

    Prints what was read per account, region and cluster, then the anomalies and incidents.
    Corrupt objects are reported and skipped; the scan goes on. A file named here is read
    by its content when its name is not CloudTrail's or Firehose's; files under a folder
    whose names say neither are listed on stderr. Exit status 1 when a named file is no log.
    Memory stays under --memory-mb; the scan says what it forgot to stay there.
    """
    from harvester.detect.engine import scan_events
    from harvester.detect.render import render_findings
    from harvester.inventory.validation import InvalidValue

    try:
        limits = ScanLimits.for_megabytes(memory_mb)
    except ValueError as exc:
        raise InvalidValue("--memory-mb", str(memory_mb), str(exc)) from None
    summary = ScanSummary()
    events = _with_progress(iter_scan(_objects(paths, endpoint_url), summary), summary)
    store = limits.store()
    report = scan_events(events, store=store, max_anomalies=limits.anomalies)
    machine = output is not FindingsFormat.table
    _print_summary(summary, to_stderr=machine)
    notice = limits.notice(store, dropped=report.dropped)
    if notice:
        print(notice, file=sys.stderr)
    render_findings(report.anomalies, report.incidents, output.value)
    _exit_status(summary)


def parse(
    paths: PathsArg,
    out: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Write normalized events here (JSON lines); '-' for stdout."
        ),
    ],
    endpoint_url: EndpointOpt = None,
) -> None:
    """Parse log objects into normalized events, one JSON object per line.

    A file named here is read by its content when its name is not CloudTrail's or
    Firehose's; files under a folder whose names say neither are listed on stderr.
    Exit status 1 when a named file is no log.
    """
    summary = ScanSummary()
    objects = _objects(paths, endpoint_url)
    # Events are encoded a thousand at a time and dropped: no tallies, no payload copies.
    scanned = iter_scan(objects, summary, groups=False, keep_events=False)
    events = _with_progress(scanned, summary)
    stream = sys.stdout.buffer if str(out) == "-" else out.open("wb")
    try:
        while batch := list(islice(events, 1000)):
            stream.write(encode_events(batch))
    finally:
        if stream is not sys.stdout.buffer:
            stream.close()
    print(
        f"wrote {summary.events} events from {summary.objects} objects to {printable(out)}",
        file=sys.stderr,
    )
    _print_problems(summary)
    _exit_status(summary)
