"""Alembic environment: the engine comes from the caller (see harvester.db.migrate)."""

from alembic import context

# Every model module, so that the metadata holds every table.
from harvester.db import anomaly_models, integrity_models, notify_models, user_models  # noqa: F401
from harvester.db.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
