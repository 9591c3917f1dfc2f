"""What a CLI command needs, built once per invocation: settings, database, secret box."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from harvester.clock import Clock, utcnow

# Settings, the database and crypto modules are imported when a command first uses them:
# `--help` starts without pydantic, and commands without a database (parse, policy)
# without SQLAlchemy and alembic.
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from harvester.crypto import SecretBox
    from harvester.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    clock: Clock = field(default=utcnow)

    @classmethod
    def from_environment(cls) -> AppContext:
        from harvester.settings import load_settings

        return cls(settings=load_settings())

    @cached_property
    def engine(self) -> Engine:
        from harvester.db.engine import make_engine

        return make_engine(self.settings.effective_database_url)

    @cached_property
    def box(self) -> SecretBox:
        from harvester.crypto import secret_box

        return secret_box(self.settings)

    def ensure_schema(self) -> None:
        """Migrate the embedded SQLite database by itself; ask for an explicit upgrade elsewhere."""
        from sqlalchemy.exc import OperationalError

        from harvester.db.engine import DatabaseError
        from harvester.db.migrate import current_revision, head_revision, upgrade

        try:
            current = current_revision(self.engine)
        except OperationalError as exc:
            raise DatabaseError(
                f"cannot connect to the database {self.safe_database_url}: {exc.orig}"
            ) from None
        head = head_revision(self.engine)
        if current == head:
            return
        if self.engine.dialect.name == "sqlite":
            upgrade(self.engine)
            return
        raise DatabaseError(
            f"the database is at schema revision {current or 'none'}, this version needs {head}: "
            "run 'harvester db upgrade'"
        )

    def close(self) -> None:
        """Dispose of the engine's connections (only if one was made)."""
        if "engine" in self.__dict__:
            self.engine.dispose()

    @property
    def safe_database_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.settings.effective_database_url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        from harvester.db.engine import session_factory

        self.ensure_schema()
        with session_factory(self.engine)() as session, session.begin():
            yield session
