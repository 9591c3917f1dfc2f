"""The Alembic migrations build exactly the tables the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from harvester.db import anomaly_models, integrity_models, notify_models, user_models  # noqa: F401  the whole metadata
from harvester.db.migrate import current_revision, head_revision
from harvester.db.models import Base


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_sqlite_schema_matches_models(sqlite_engine: Engine) -> None:
    assert current_revision(sqlite_engine) == head_revision(sqlite_engine)
    assert _diff(sqlite_engine) == []


def test_postgresql_schema_matches_models(pg_engine: Engine) -> None:
    assert current_revision(pg_engine) == head_revision(pg_engine)
    assert _diff(pg_engine) == []
