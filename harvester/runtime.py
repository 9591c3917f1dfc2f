"""The world of one process: settings, database, Redis, AWS sessions, secret box, clock.

Built once per process by :meth:`Runtime.build`: by the CLI, by a Celery worker child after
fork (``worker_process_init``), by beat, or by a test. Nothing here runs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from harvester.aws.session import ClientSettings, SessionFactory
from harvester.clock import Clock, utcnow
from harvester.crypto import SecretBox, secret_box
from harvester.db.engine import make_engine, session_factory
from harvester.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default=utcnow)
    fetch_concurrency: int = 8

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock = utcnow) -> Runtime:
        return cls(settings=settings, clock=clock)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(self.settings.redis_url, health_check_interval=30)

    @cached_property
    def box(self) -> SecretBox:
        return secret_box(self.settings)

    @cached_property
    def aws(self) -> SessionFactory:
        return SessionFactory(settings=ClientSettings(fetch_concurrency=self.fetch_concurrency))

    def close(self) -> None:
        """Release connections; safe to call whether or not they were ever made."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
