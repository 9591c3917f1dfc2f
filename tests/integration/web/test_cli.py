"""``harvester users`` in-process on SQLite and PostgreSQL, and ``harvester web`` as a process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, text
from typer.testing import CliRunner, Result

from harvester import users
from harvester.cli.context import AppContext
from harvester.cli.web_cmds import users_app
from harvester.db.engine import make_engine
from harvester.db.migrate import upgrade
from harvester.inventory.validation import InvalidValue
from harvester.settings import load_settings
from tests.conftest import REPO, FixedClock, wait_until
from tests.integration.web.conftest import ALL_TABLES

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


@dataclass
class Cli:
    app: typer.Typer
    engine: Engine

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(self.app, list(args), input=input)

    def ok(self, *args: str, input: str | None = None) -> Result:
        result = self(*args, input=input)
        assert result.exit_code == 0, (result.output, result.exception)
        return result


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: FixedClock,
) -> Iterator[Cli]:
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HARVESTER_SECRET_KEY", "cli-test")
    for name in ("HARVESTER_DATABASE_URL", "HARVESTER_CONFIG", "HARVESTER_WEB_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "postgresql":
        engine: Engine = request.getfixturevalue("pg_engine")
        monkeypatch.setenv(
            "HARVESTER_DATABASE_URL", engine.url.render_as_string(hide_password=False)
        )
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'harvester.db'}")
        upgrade(engine)
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = AppContext(settings=load_settings(), clock=clock)
        ctx.call_on_close(ctx.obj.close)

    app.add_typer(users_app, name="users")
    try:
        yield Cli(app, engine)
    finally:
        if request.param == "postgresql":
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))
        else:
            engine.dispose()


def _users(cli: Cli) -> dict[str, tuple[str, bool]]:
    with cli.engine.connect() as conn:
        rows = conn.execute(text("SELECT username, role, enabled FROM users")).all()
    return {name: (role, bool(enabled)) for name, role, enabled in rows}


def test_first_user_is_an_admin_then_viewers(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", PASSWORD)
    assert "added admin alice" in cli.ok("users", "add", "alice").output
    assert "added viewer bob" in cli.ok("users", "add", "bob").output
    assert "added admin carol" in cli.ok("users", "add", "carol", "--role", "admin").output
    assert _users(cli) == {
        "alice": ("admin", True),
        "bob": ("viewer", True),
        "carol": ("admin", True),
    }
    with cli.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert all(h.startswith("scrypt$") and PASSWORD not in h for h in stored)
    assert all(users.verify_password(PASSWORD, h) for h in stored)


def test_password_is_asked_twice_without_echo(cli: Cli) -> None:
    result = cli.ok(
        "users", "add", "dana", input=f"{PASSWORD}\nother thing here\n{PASSWORD}\n{PASSWORD}\n"
    )
    assert "do not match" in result.output
    assert PASSWORD not in result.output
    assert _users(cli) == {"dana": ("admin", True)}


@pytest.mark.parametrize(
    "args", [("users", "add", "eve!"), ("users", "add", "eve", "--role", "root")]
)
def test_bad_users_are_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", PASSWORD)
    result = cli(*args)
    assert isinstance(result.exception, InvalidValue)
    assert _users(cli) == {}


def test_a_short_password_is_refused_and_not_repeated(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", "hunter2")
    result = cli("users", "add", "eve")
    assert isinstance(result.exception, InvalidValue)
    assert "hunter2" not in str(result.exception)
    assert "12 to 1024 characters" in str(result.exception)
    assert _users(cli) == {}


def test_a_name_is_taken_once(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", PASSWORD)
    cli.ok("users", "add", "alice")
    result = cli("users", "add", "alice", "--role", "viewer")
    assert isinstance(result.exception, InvalidValue)
    assert _users(cli) == {"alice": ("admin", True)}


def test_tokens_are_printed_once_and_listed_by_count(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", PASSWORD)
    cli.ok("users", "add", "alice")
    result = cli.ok("users", "token", "alice", "--name", "ci")
    token = result.stdout.strip()
    assert token.startswith(users.TOKEN_PREFIX)
    with cli.engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert stored == [users.token_hash(token)]
    listing = cli.ok("users", "list", "--output", "json").output
    assert '"tokens": 1' in listing
    assert token not in listing
    unknown = cli("users", "token", "nobody", "--name", "ci")
    assert isinstance(unknown.exception, InvalidValue)
    bad_name = cli("users", "token", "alice", "--name", "")
    assert isinstance(bad_name.exception, InvalidValue)


def test_disable_and_enable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", PASSWORD)
    cli.ok("users", "add", "alice")
    cli.ok("users", "disable", "alice")
    assert _users(cli) == {"alice": ("admin", False)}
    cli.ok("users", "enable", "alice")
    assert _users(cli) == {"alice": ("admin", True)}


def _generation(cli: Cli, username: str) -> tuple[int, str]:
    with cli.engine.connect() as conn:
        row = conn.execute(
            text("SELECT session_generation, password_hash FROM users WHERE username = :u"),
            {"u": username},
        ).one()
    return int(row[0]), str(row[1])


def test_password_and_logout_end_the_users_sessions(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", PASSWORD)
    cli.ok("users", "add", "alice")
    start, old_hash = _generation(cli, "alice")
    cli.ok("users", "logout", "alice")
    assert _generation(cli, "alice") == (start + 1, old_hash)
    monkeypatch.setenv("HARVESTER_WEB_PASSWORD", "another long password")
    changed = cli.ok("users", "password", "alice")
    assert "their sessions ended" in changed.output
    generation, new_hash = _generation(cli, "alice")
    assert generation == start + 2
    assert users.verify_password("another long password", new_hash)
    assert isinstance(cli("users", "logout", "nobody").exception, InvalidValue)


# --- harvester web, as a process ---------------------------------------------------------------

SERVE = """
import sys, typer
from harvester.cli.context import AppContext
from harvester.cli.web_cmds import web
app = typer.Typer()
@app.callback()
def main(ctx: typer.Context) -> None:
    ctx.obj = AppContext.from_environment()
app.command("web")(web)
app(sys.argv[1:])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, str]] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)
    except OSError:
        return None


def test_web_serves_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HARVESTER_")},
        "HARVESTER_DATA_DIR": str(tmp_path),
        "HARVESTER_SECRET_KEY": "serve-test",
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "web", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found = wait_until(
            lambda: _get(f"http://127.0.0.1:{port}/login") or proc.poll() is not None,
            timeout=60,
            what="harvester web to answer",
        )
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert isinstance(found, tuple)
        status, headers = found
        assert status == 200
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        redirected = _get(f"http://127.0.0.1:{port}/api/v1/sources")
        assert redirected is not None
        assert redirected[0] == 401
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "no admin yet" in output
    assert f"http://127.0.0.1:{port}/" in output
