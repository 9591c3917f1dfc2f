"""``harvester secrets rotate``: re-encrypt the stored secrets with a new at-rest key."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Final

import typer

from harvester.cli.context import AppContext
from harvester.cli.output import console
from harvester.keyrotation import KeyRotationError, parse_key_list, rotate_secrets

__all__ = ["OLD_KEYS_ENV", "secrets_app"]

OLD_KEYS_ENV: Final = "HARVESTER_OLD_SECRET_KEYS"

secrets_app = typer.Typer(help="Secrets stored encrypted at rest.", no_args_is_help=True)


@secrets_app.callback()
def _secrets_group() -> None:
    """Secrets stored encrypted at rest."""
    # A callback keeps "rotate" a subcommand: Typer runs a one-command app as that command.


def _fail(message: str) -> typer.Exit:
    # Plain print: scripts grep these messages, and rich would wrap them.
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


@secrets_app.command("rotate")
def rotate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check that every secret opens; write nothing.")
    ] = False,
) -> None:
    """Re-encrypt every stored secret with the key in HARVESTER_SECRET_KEY.

    The keys they are stored with now come from HARVESTER_OLD_SECRET_KEYS (comma-separated)
    and from the generated key file in the data directory, if there is one. Keys are read
    from the environment only, never from the command line, where other users could see them
    in the process list. One transaction: either every secret is re-encrypted or none is.
    Running it again changes nothing.
    """
    app = ctx.find_object(AppContext) or AppContext.from_environment()
    settings = app.settings
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        raise _fail(
            "set HARVESTER_SECRET_KEY to the new key (the old ones go in HARVESTER_OLD_SECRET_KEYS)"
        )
    new_key = settings.secret_key.get_secret_value()
    old_keys = parse_key_list(os.environ.get(OLD_KEYS_ENV))
    key_file = settings.secret_key_file
    key_file_used = False
    if key_file.is_file():
        # A generated key file (the embedded default) is the key secrets were stored with
        # before HARVESTER_SECRET_KEY was set; HARVESTER_SECRET_KEY now wins over it.
        try:
            file_key = key_file.read_text().strip()
        except OSError as exc:
            raise _fail(f"cannot read the key file {key_file}: {exc.strerror}") from None
        if file_key and file_key != new_key:
            old_keys.append(file_key)
            key_file_used = True
    try:
        with app.session() as session:
            report = rotate_secrets(session, new_key=new_key, old_keys=old_keys, dry_run=dry_run)
    except KeyRotationError as exc:
        raise _fail(str(exc)) from None
    out = console()
    if dry_run:
        out.print(
            f"dry run: {report.rotated} of {report.total} stored secret(s) would be re-encrypted, "
            f"{report.already_current} already use the new key; nothing was written",
            markup=False,
        )
        return
    out.print(
        f"re-encrypted {report.rotated} of {report.total} stored secret(s) with the new key; "
        f"{report.already_current} already used it",
        markup=False,
    )
    if report.rotated_ids:
        ids = ", ".join(str(i) for i in report.rotated_ids)
        out.print(f"access key config id(s) re-encrypted: {ids}", markup=False)
    out.print(
        "next: run every process with this HARVESTER_SECRET_KEY, then drop the old keys"
        + (f" and delete the key file {key_file}" if key_file_used else ""),
        markup=False,
    )
