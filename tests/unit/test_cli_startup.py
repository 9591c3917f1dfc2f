"""``harvester`` imports a command's modules only when that command runs (issue 12, item 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from harvester.cli import fleet_cmds
from harvester.cli.main import HarvesterGroup, app

# What no command needs unless it uses it: the database, migrations, AWS clients, Celery,
# the detection engine, the web stack.
HEAVY = ("sqlalchemy", "alembic", "boto3", "celery", "starlette", "harvester.detect")
# And what `--help` needs neither: settings (pydantic) and logging (botocore's errors).
NOT_FOR_HELP = ("pydantic", "botocore", "harvester.settings", "harvester.logs")


def _loaded_modules(*argv: str) -> set[str]:
    """Module names a fresh interpreter has loaded after running ``harvester argv``."""
    code = (
        "import json, sys\n"
        "from harvester.cli.main import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    names: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return set(names)


def _matching(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.startswith(prefixes))


def test_help_imports_no_command_module() -> None:
    modules = _loaded_modules("--help")
    assert _matching(modules, HEAVY + NOT_FOR_HELP) == []
    assert not [m for m in modules if m.startswith("harvester.cli.") and m.endswith("_cmds")]


def test_parse_imports_neither_database_nor_detection(tmp_path: Path) -> None:
    log = tmp_path / "trail.json"
    log.write_text('{"Records": []}')
    modules = _loaded_modules("parse", str(log), "-o", str(tmp_path / "out.jsonl"))
    assert "harvester.cli.scan_cmds" in modules
    assert _matching(modules, HEAVY) == []


def test_listed_help_is_each_commands_own() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, HarvesterGroup)
    for name, entry in HarvesterGroup.lazy.items():
        command = group.get_command(typer.Context(group), name)
        assert command is not None, name
        assert command.get_short_help_str(limit=500) == entry.help, name


def test_every_fleet_command_is_listed() -> None:
    holder = typer.Typer()
    fleet_cmds.register(holder)
    registered = {info.name for info in holder.registered_commands}
    listed = {n for n, e in HarvesterGroup.lazy.items() if e.module == fleet_cmds.__name__}
    assert registered == listed


@pytest.mark.parametrize("argv", [["sorces"], ["sources", "--help"]])
def test_commands_resolve_when_loaded_lazily(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from harvester.cli.main import main

    with pytest.raises(SystemExit):
        main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "sources" in text
    if argv == ["sorces"]:
        assert "Did you mean 'sources'" in text
    else:
        assert "List sources" in text
