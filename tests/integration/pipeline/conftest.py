"""The embedded pipeline's runtime on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harvester.clock import Clock
from harvester.db import anomaly_models, user_models  # noqa: F401  the whole metadata
from harvester.db.migrate import upgrade
from harvester.inventory.plan import apply
from harvester.runtime import Runtime
from harvester.settings import load_settings
from tests.conftest import truncate_all
from tests.integration.seeding import inventory


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, now: Clock, aws: str
) -> Iterator[Runtime]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'h.db'}"
    else:
        engine = request.getfixturevalue("pg_engine")
        url = engine.url.render_as_string(hide_password=False)
    settings = load_settings(
        {
            "HARVESTER_DATA_DIR": str(tmp_path),
            "HARVESTER_DATABASE_URL": url,
            "HARVESTER_SECRET_KEY": "test-key",
        }
    )
    rt = Runtime.build(settings, clock=now, embedded=True)
    upgrade(rt.engine)
    with rt.sessions.begin() as session:
        apply(session, inventory(), box=rt.box, clock=now)
    yield rt
    if request.param == "postgresql":
        truncate_all(rt.engine)
    rt.close()
