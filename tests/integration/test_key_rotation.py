"""``harvester secrets rotate`` on SQLite and PostgreSQL, through the command line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from harvester.cli.context import AppContext
from harvester.cli.secret_cmds import secrets_app
from harvester.crypto import SecretBox, SecretKeyError
from harvester.db.engine import make_engine
from harvester.db.migrate import upgrade
from harvester.db.models import AccessKeyConfig
from harvester.keyrotation import KeyRotationError, parse_key_list, rotate_secrets

pytestmark = pytest.mark.integration

OLD = "old-passphrase-from-the-vault"
OLDER = "the-key-before-that"
NEW = "new-passphrase-2026"
SECRETS = {
    "AKIAEXAMPLEAAAAAAAA1": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAEXAMPLEAAAAAAAA2": "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "AKIAEXAMPLEAAAAAAAA3": "Zq4VtRf8uK2/Lm9pYb1/xw5CnE3dHsEXAMPLEKEY",
}


@dataclass
class Db:
    engine: Engine
    data_dir: Path


@pytest.fixture(params=["sqlite", "postgresql"])
def db(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Db]:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(data_dir))
    for name in ("HARVESTER_SECRET_KEY", "HARVESTER_OLD_SECRET_KEYS", "HARVESTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'harvester.db'}"
        engine = make_engine(url)
        upgrade(engine)
        monkeypatch.setenv("HARVESTER_DATABASE_URL", url)
        yield Db(engine, data_dir)
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    monkeypatch.setenv("HARVESTER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    try:
        yield Db(engine, data_dir)
    finally:
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE access_key_configs RESTART IDENTITY CASCADE"))


def store(engine: Engine, key_id: str, secret: str, key: str) -> int:
    with Session(engine) as session, session.begin():
        row = AccessKeyConfig(
            access_key_id=key_id,
            secret_encrypted=SecretBox.from_keys(key).encrypt(secret),
            created_at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        return row.id


def stored(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {
            row.access_key_id: row.secret_encrypted
            for row in session.scalars(select(AccessKeyConfig))
        }


def opens_with(engine: Engine, key: str) -> dict[str, str]:
    box = SecretBox.from_keys(key)
    return {key_id: box.decrypt(token) for key_id, token in stored(engine).items()}


# The CLI as `harvester` builds it: a callback that puts the AppContext on the context.
cli = typer.Typer()


@cli.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = AppContext.from_environment()
    ctx.call_on_close(ctx.obj.close)


cli.add_typer(secrets_app, name="secrets")


def run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["secrets", *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_no_secret_in(*outputs: str) -> None:
    for output in outputs:
        for secret in (*SECRETS.values(), OLD, OLDER, NEW):
            assert secret not in output


def test_rotate_re_encrypts_everything_once(db: Db) -> None:
    ids = [store(db.engine, "AKIAEXAMPLEAAAAAAAA1", SECRETS["AKIAEXAMPLEAAAAAAAA1"], OLD)]
    ids.append(store(db.engine, "AKIAEXAMPLEAAAAAAAA2", SECRETS["AKIAEXAMPLEAAAAAAAA2"], OLDER))
    ids.append(store(db.engine, "AKIAEXAMPLEAAAAAAAA3", SECRETS["AKIAEXAMPLEAAAAAAAA3"], NEW))
    before = stored(db.engine)
    env = {"HARVESTER_SECRET_KEY": NEW, "HARVESTER_OLD_SECRET_KEYS": f" {OLD} ,,{OLDER}"}

    code, out, err = run("rotate", "--dry-run", env=env)
    assert code == 0, err
    assert "2 of 3" in out
    assert "nothing was written" in out
    assert stored(db.engine) == before

    code, out, err = run("rotate", env=env)
    assert code == 0, err
    assert "re-encrypted 2 of 3" in out
    assert "1 already used it" in out
    assert f"{ids[0]}, {ids[1]}" in out
    assert_no_secret_in(out, err)
    assert opens_with(db.engine, NEW) == SECRETS
    after = stored(db.engine)
    assert after["AKIAEXAMPLEAAAAAAAA3"] == before["AKIAEXAMPLEAAAAAAAA3"]  # left alone
    with pytest.raises(SecretKeyError):
        opens_with(db.engine, OLD)

    # Idempotent: a second run (a retried rollout) rewrites nothing.
    code, out, _ = run("rotate", env=env)
    assert code == 0
    assert "re-encrypted 0 of 3" in out
    assert stored(db.engine) == after


def test_a_secret_no_key_opens_aborts_the_whole_rotation(db: Db) -> None:
    store(db.engine, "AKIAEXAMPLEAAAAAAAA1", SECRETS["AKIAEXAMPLEAAAAAAAA1"], OLD)
    lost = store(db.engine, "AKIAEXAMPLEAAAAAAAA2", SECRETS["AKIAEXAMPLEAAAAAAAA2"], OLDER)
    before = stored(db.engine)
    code, out, err = run(
        "rotate", env={"HARVESTER_SECRET_KEY": NEW, "HARVESTER_OLD_SECRET_KEYS": OLD}
    )
    assert code == 2
    assert f"access key config id {lost}" in err
    assert "nothing was changed" in err
    assert "Traceback" not in err
    assert_no_secret_in(out, err)
    assert stored(db.engine) == before  # not even the row that could be rotated


def test_the_generated_key_file_counts_as_an_old_key(db: Db) -> None:
    db.data_dir.mkdir(parents=True, exist_ok=True)
    key_file = db.data_dir / "secret.key"
    key_file.write_text("generated-key-of-the-embedded-default\n")
    store(
        db.engine,
        "AKIAEXAMPLEAAAAAAAA1",
        SECRETS["AKIAEXAMPLEAAAAAAAA1"],
        "generated-key-of-the-embedded-default",
    )
    code, out, err = run("rotate", env={"HARVESTER_SECRET_KEY": NEW})
    assert code == 0, err
    assert "re-encrypted 1 of 1" in out
    assert str(key_file) in out  # told to delete it once everything runs with the new key
    assert opens_with(db.engine, NEW) == {"AKIAEXAMPLEAAAAAAAA1": SECRETS["AKIAEXAMPLEAAAAAAAA1"]}


def test_the_new_key_must_be_set(db: Db) -> None:
    code, _, err = run("rotate", env={"HARVESTER_OLD_SECRET_KEYS": OLD})
    assert code == 2
    assert "HARVESTER_SECRET_KEY" in err


def test_rotation_is_undone_with_the_transaction(db: Db) -> None:
    store(db.engine, "AKIAEXAMPLEAAAAAAAA1", SECRETS["AKIAEXAMPLEAAAAAAAA1"], OLD)
    before = stored(db.engine)
    with Session(db.engine) as session:
        session.begin()
        report = rotate_secrets(session, new_key=NEW, old_keys=[OLD])
        assert report.rotated == 1
        session.rollback()
    assert stored(db.engine) == before
    with Session(db.engine) as session, pytest.raises(KeyRotationError):
        rotate_secrets(session, new_key="", old_keys=[OLD])


def test_parse_key_list() -> None:
    assert parse_key_list(None) == []
    assert parse_key_list(" a , b,,c ") == ["a", "b", "c"]
