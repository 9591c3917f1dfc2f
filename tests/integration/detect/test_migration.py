"""Migration 0002 builds exactly the tables the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import harvester.db.anomaly_models  # noqa: F401  the metadata must include these tables
from harvester.db.engine import make_engine
from harvester.db.migrate import alembic_config, current_revision, head_revision, upgrade
from harvester.db.models import Base

pytestmark = pytest.mark.integration
TABLES = {"anomalies", "incidents", "incident_anomalies", "suppressions"}


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_postgresql_schema_matches_the_models(pg_engine: Engine) -> None:
    assert set(inspect(pg_engine).get_table_names()) >= TABLES
    assert _diff(pg_engine) == []


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert _diff(engine) == []
    command.downgrade(alembic_config(engine), "0001")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    constraints = {c["name"] for c in inspect(engine).get_unique_constraints("anomalies")}
    assert "uq_anomalies_dedup_key" in constraints
    engine.dispose()
