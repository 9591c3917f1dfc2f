"""``harvester``: the command line of audit-harvester."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from harvester import __version__
from harvester.aws.identity import IdentityConfigError
from harvester.cli import anomaly_cmds, demo_cmds, fleet_cmds, scan_cmds, web_cmds
from harvester.cli.context import AppContext
from harvester.cli.doctor_cmds import doctor
from harvester.cli.inventory_cmds import (
    accounts_app,
    clusters_app,
    inventory_app,
    roles_app,
    sources_app,
    storage_app,
)
from harvester.cli.metrics_cmds import metrics_app
from harvester.cli.output import console
from harvester.cli.policy_cmds import policy_app
from harvester.cli.secret_cmds import secrets_app
from harvester.cli.verify_cmds import verify
from harvester.crypto import SecretKeyError
from harvester.db.engine import DatabaseError
from harvester.db.migrate import current_revision, head_revision, upgrade
from harvester.demo import DemoError
from harvester.inventory.service import InUse, NotFound
from harvester.inventory.validation import InvalidValue
from harvester.inventory.yamlfile import InventoryFileError
from harvester.logs import configure_logging
from harvester.scan_s3 import S3UrlError
from harvester.settings import SettingsError

app = typer.Typer(
    name="harvester",
    help=(
        "audit-harvester: harvest CloudTrail and EKS audit logs from S3, and find anomalies.\n\n"
        "Settings come from HARVESTER_* environment variables (see README.md): "
        "HARVESTER_DATA_DIR, HARVESTER_DATABASE_URL, HARVESTER_BROKER_URL, HARVESTER_REDIS_URL."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(inventory_app, name="inventory")
app.add_typer(accounts_app, name="accounts")
app.add_typer(clusters_app, name="clusters")
app.add_typer(storage_app, name="storage")
app.add_typer(roles_app, name="roles")
app.add_typer(sources_app, name="sources")
app.add_typer(policy_app, name="policy")
app.add_typer(anomaly_cmds.anomalies_app, name="anomalies")
app.add_typer(anomaly_cmds.incidents_app, name="incidents")
app.add_typer(anomaly_cmds.suppress_app, name="suppress")
app.command("doctor")(doctor)
fleet_cmds.register(app)
app.command("scan")(scan_cmds.scan)
app.command("parse")(scan_cmds.parse)
app.command("demo")(demo_cmds.demo)
app.command("verify")(verify)
app.command("web")(web_cmds.web)
app.add_typer(web_cmds.users_app, name="users")
app.add_typer(metrics_app, name="metrics")
app.add_typer(secrets_app, name="secrets")

# Errors that are the operator's to fix: printed as one line, exit status 2, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (
    InvalidValue,
    IdentityConfigError,
    InventoryFileError,
    NotFound,
    InUse,
    S3UrlError,
    DemoError,
    SettingsError,
    SecretKeyError,
    DatabaseError,
)


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
    # Settings are read here, once per invocation, not at import.
    ctx.obj = AppContext.from_environment()
    configure_logging(ctx.obj.settings.log_level, ctx.obj.settings.log_format)
    ctx.call_on_close(ctx.obj.close)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create or migrate the database schema to this version (safe to run repeatedly)."""
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
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision of the database and the one this version needs."""
    app_ctx = ctx.find_object(AppContext)
    assert app_ctx is not None
    current = current_revision(app_ctx.engine)
    console().print(
        f"database revision {current or 'none'}, expected {head_revision(app_ctx.engine)}"
    )


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, turning operator errors into one-line messages.

    Click's standalone mode handles usage errors, --help and exit codes; our domain errors
    pass through it and are printed here as one line with exit status 2, no traceback.
    """
    try:
        app(args=argv, prog_name="harvester")
    except USER_ERRORS as exc:
        # Plain print: rich would wrap the line, and scripts grep these messages.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
