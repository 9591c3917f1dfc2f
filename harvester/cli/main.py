"""``harvester``: the command line of audit-harvester."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, ClassVar

import typer

from harvester import __version__
from harvester.cli.context import AppContext
from harvester.cli.lazy import LazyCommand, LazyGroup
from harvester.cli.output import OutputFormat, console, print_json
from harvester.terminal import printable


class HarvesterGroup(LazyGroup):
    # Each command's module is imported when that command runs, not for `harvester --help`.
    lazy: ClassVar[dict[str, LazyCommand]] = {
        "doctor": LazyCommand(
            "harvester.cli.doctor_cmds",
            "doctor",
            "Check credentials, AssumeRole, bucket, listing, layout, reads, policies and "
            "encryption.",
        ),
        "worker": LazyCommand(
            "harvester.cli.fleet_cmds",
            "register",
            "Start a Celery worker (prefork) on the broker from HARVESTER_BROKER_URL.",
        ),
        "beat": LazyCommand(
            "harvester.cli.fleet_cmds",
            "register",
            "Start the scheduler; run two for availability, a Redis leader lock keeps one active.",
        ),
        "run": LazyCommand(
            "harvester.cli.fleet_cmds",
            "register",
            "Harvest and score in this process, without a broker (the embedded default).",
        ),
        "backfill": LazyCommand(
            "harvester.cli.fleet_cmds",
            "register",
            "Harvest a time range of a source again, including objects already processed.",
        ),
        "scan": LazyCommand(
            "harvester.cli.scan_cmds",
            "scan",
            "Scan CloudTrail and EKS audit logs for anomalies and incidents, offline.",
        ),
        "parse": LazyCommand(
            "harvester.cli.scan_cmds",
            "parse",
            "Parse log objects into normalized events, one JSON object per line.",
        ),
        "demo": LazyCommand(
            "harvester.cli.demo_cmds",
            "demo",
            "Generate an organization's logs into a local moto S3, harvest and score them.",
        ),
        "verify": LazyCommand(
            "harvester.cli.verify_cmds",
            "verify",
            "Verify CloudTrail log file integrity from the digest files, hour by hour.",
        ),
        "web": LazyCommand(
            "harvester.cli.web_cmds",
            "web",
            "Serve the web console and its JSON API (/api/v1, OpenAPI at /api/v1/openapi.json).",
        ),
        "inventory": LazyCommand(
            "harvester.cli.inventory_cmds",
            "inventory_app",
            "Apply or export the whole inventory as a YAML file.",
        ),
        "accounts": LazyCommand(
            "harvester.cli.inventory_cmds",
            "accounts_app",
            "AWS accounts and their CloudTrail storage.",
        ),
        "clusters": LazyCommand(
            "harvester.cli.inventory_cmds",
            "clusters_app",
            "EKS clusters whose audit logs arrive through Firehose.",
        ),
        "storage": LazyCommand(
            "harvester.cli.inventory_cmds",
            "storage_app",
            "Edit where a source's logs are read from.",
        ),
        "roles": LazyCommand(
            "harvester.cli.inventory_cmds",
            "roles_app",
            "IAM role configs used to read the buckets.",
        ),
        "sources": LazyCommand(
            "harvester.cli.inventory_cmds",
            "sources_app",
            "Sources: one per account CloudTrail and per EKS cluster.",
        ),
        "policy": LazyCommand(
            "harvester.cli.policy_cmds",
            "policy_app",
            "Print the bucket, trust and identity policies that harvesting needs.",
        ),
        "anomalies": LazyCommand(
            "harvester.cli.anomaly_cmds",
            "anomalies_app",
            "Anomalies the detectors raised.",
        ),
        "incidents": LazyCommand(
            "harvester.cli.anomaly_cmds",
            "incidents_app",
            "Incidents: anomalies of one identity that form an attack chain.",
        ),
        "suppress": LazyCommand(
            "harvester.cli.anomaly_cmds",
            "suppress_app",
            "Suppression rules: detectors muted for a principal, an account, for a while.",
        ),
        "users": LazyCommand(
            "harvester.cli.web_cmds",
            "users_app",
            "People who may use the web console, and their API tokens.",
        ),
        "metrics": LazyCommand(
            "harvester.cli.metrics_cmds",
            "metrics_app",
            "Prometheus metrics: the fleet's inventory gauges.",
        ),
        "secrets": LazyCommand(
            "harvester.cli.secret_cmds",
            "secrets_app",
            "Secrets stored encrypted at rest.",
        ),
        "destinations": LazyCommand(
            "harvester.cli.destination_cmds",
            "destinations_app",
            "Notification destinations: list them, send a test finding.",
        ),
    }
    typer_settings: ClassVar[dict[str, Any]] = {
        "rich_markup_mode": None,
        "pretty_exceptions_enable": False,
    }


app = typer.Typer(
    name="harvester",
    help=(
        "audit-harvester: harvest CloudTrail and EKS audit logs from S3, and find anomalies.\n\n"
        "Settings come from HARVESTER_* environment variables (see README.md): "
        "HARVESTER_DATA_DIR, HARVESTER_DATABASE_URL, HARVESTER_BROKER_URL, HARVESTER_REDIS_URL."
    ),
    no_args_is_help=True,
    cls=HarvesterGroup,
    **HarvesterGroup.typer_settings,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# Errors that are the operator's to fix: printed as one line, exit status 2, no traceback.
# (module, class): an error whose module was never imported cannot have been raised, so
# checking for it imports nothing.
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("harvester.inventory.validation", "InvalidValue"),
    ("harvester.aws.identity", "IdentityConfigError"),
    ("harvester.inventory.yamlfile", "InventoryFileError"),
    ("harvester.inventory.service", "NotFound"),
    ("harvester.inventory.service", "InUse"),
    ("harvester.scan_s3", "S3UrlError"),
    ("harvester.demo", "DemoError"),
    ("harvester.settings", "SettingsError"),
    ("harvester.crypto", "SecretKeyError"),
    ("harvester.db.engine", "DatabaseError"),
)


def _is_user_error(exc: Exception) -> bool:
    loaded = (
        getattr(sys.modules[module], name) for module, name in USER_ERRORS if module in sys.modules
    )
    return isinstance(exc, tuple(loaded))


# Commands that read no settings: loading them (pydantic-settings, the YAML file) would be
# a tenth of a second of CPU on every run, a tenth of parsing a 200 MB object.
SETTINGS_FREE = frozenset(("parse", "policy"))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"audit-harvester {__version__}")
        raise typer.Exit


@app.callback()
def main_callback(
    ctx: typer.Context,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    from harvester.logs import configure_logging

    if ctx.invoked_subcommand in SETTINGS_FREE:
        configure_logging(os.environ.get("HARVESTER_LOG_LEVEL", "INFO"))
        return
    # Settings are read here, once per invocation, not at import.
    ctx.obj = AppContext.from_environment()
    configure_logging(ctx.obj.settings.log_level, ctx.obj.settings.log_format)
    ctx.call_on_close(ctx.obj.close)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database schema to this version (safe to run repeatedly)."""
    from sqlalchemy.exc import OperationalError

    from harvester.db.engine import DatabaseError
    from harvester.db.migrate import current_revision, head_revision, upgrade

    app_ctx = ctx.find_object(AppContext)
    assert app_ctx is not None
    try:
        before = current_revision(app_ctx.engine)
        upgrade(app_ctx.engine)
    except OperationalError as exc:
        raise DatabaseError(f"cannot migrate {app_ctx.safe_database_url}: {exc.orig}") from None
    after = head_revision(app_ctx.engine)
    if before == after:
        console().print(f"database {app_ctx.safe_database_url} is up to date (revision {after})")
    else:
        console().print(
            f"database {app_ctx.safe_database_url} upgraded from {before or 'empty'} to {after}"
        )


@db_app.command("current")
def db_current(
    ctx: typer.Context,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts.")
    ] = OutputFormat.table,
) -> None:
    """Print the schema revision of the database and the one this version needs.

    Exit status 1 when the database is behind (run 'harvester db upgrade').
    """
    from harvester.db.migrate import current_revision, head_revision

    app_ctx = ctx.find_object(AppContext)
    assert app_ctx is not None
    current = current_revision(app_ctx.engine)
    expected = head_revision(app_ctx.engine)
    if output is OutputFormat.json:
        print_json({"current": current, "expected": expected, "up_to_date": current == expected})
    else:
        console().print(f"database revision {current or 'none'}, expected {expected}")
    if current != expected:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning operator errors into one-line messages.

    Click's standalone mode handles usage errors, --help and exit codes; our domain errors
    pass through it and are printed here as one line with exit status 2, no traceback.
    """
    try:
        app(args=argv, prog_name="harvester")
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        # Plain print: rich would wrap the line, and scripts grep these messages.
        print(f"error: {printable(exc, keep_newlines=True)}", file=sys.stderr)
        sys.exit(2)
