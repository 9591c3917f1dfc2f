from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from harvester.cli.main import main
from harvester.db.migrate import upgrade
from harvester.db.models import AccessKeyConfig, Account, RoleConfig, Source
from tests.conftest import truncate_all


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs ``harvester`` in-process against one database, the way an operator would."""

    engine: Engine
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *args: str) -> CliResult:
        self.capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = self.capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Account, RoleConfig, AccessKeyConfig, Source)
            }


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Cli]:
    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path / "data"))
    for name in ("HARVESTER_DATABASE_URL", "HARVESTER_SECRET_KEY", "HARVESTER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        from harvester.db.engine import make_engine

        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'harvester.db'}")
        upgrade(engine)
        yield Cli(engine, capsys)
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    monkeypatch.setenv("HARVESTER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    try:
        yield Cli(engine, capsys)
    finally:
        truncate_all(engine)


# The seeded organization bucket, for the pipeline and fleet tests.
from tests.integration.seeding import bucket, now  # noqa: E402, F401
