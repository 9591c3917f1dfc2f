"""A command group that imports each command's module only when that command is used.

``harvester --help`` lists every command from a table of names and one-line helps, so it
imports none of them; ``harvester parse`` imports the parsers, not alembic, the detection
engine or the web stack. A test keeps the table's helps equal to the commands' own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer import _click


@dataclass(frozen=True)
class LazyCommand:
    """Where a top-level command lives, and the line ``harvester --help`` shows for it.

    ``attribute`` names a ``typer.Typer`` (a command group), a command function, or
    ``register``: a function that adds several commands to the app it is given.
    """

    module: str
    attribute: str
    help: str


class LazyGroup(TyperGroup):
    """A ``TyperGroup`` whose ``lazy`` commands are built on first use."""

    lazy: ClassVar[dict[str, LazyCommand]] = {}
    # The settings the root app gives its commands, so a lazily built one is the same.
    typer_settings: ClassVar[dict[str, Any]] = {}

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.commands[cmd_name] = self._load(cmd_name, self.lazy[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            # About to fail: load every command so "Did you mean ...?" can suggest any of them.
            for name in self.lazy:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        # The listing reads the table, not the commands: building them would import them all.
        listed = [
            self.commands.get(name) or TyperCommand(name, help=self.lazy[name].help)
            for name in self.list_commands(ctx)
        ]
        shown = [command for command in listed if not command.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(command.name or "") for command in shown)
        rows = [(command.name or "", command.get_short_help_str(limit)) for command in shown]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _load(self, name: str, entry: LazyCommand) -> _click.Command:
        target = getattr(importlib.import_module(entry.module), entry.attribute)
        holder = typer.Typer(**self.typer_settings)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
        elif entry.attribute == "register":
            target(holder)
        else:
            holder.command(name)(target)
        return typer.main.get_group(holder).commands[name]
