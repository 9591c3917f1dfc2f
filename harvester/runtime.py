"""The world of one process: settings, database, Redis, AWS sessions, secret box, clock.

Built once per process by :meth:`Runtime.build`: by the CLI, by a Celery worker child after
fork (``worker_process_init``), by beat, or by a test. Nothing here runs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from time import monotonic

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from harvester.aws.session import ClientSettings, SessionFactory
from harvester.clock import Clock, utcnow
from harvester.correlation import MemoryPending, PendingIdentities, RedisPending
from harvester.crypto import SecretBox, secret_box
from harvester.db.engine import make_engine, session_factory
from harvester.detect import SuppressionRule
from harvester.detect.engine import EngineConfig, Scorer
from harvester.detect.file_state import FileStore
from harvester.detect.repository import active_suppressions, inventory_rule_config
from harvester.detect.state import RedisStore, StateStore
from harvester.fleet import FleetTiming
from harvester.integrity.keys import KeyCache
from harvester.locks import Leases, LocalLeases, RedisLeases
from harvester.metrics import aws_event_hooks
from harvester.settings import Settings

SCORER_REFRESH_SECONDS = 300.0
# A suppression added in the console silences its detector within this many seconds.
SUPPRESSIONS_REFRESH_SECONDS = 60.0


def redis_configured(settings: Settings) -> bool:
    """Whether HARVESTER_REDIS_URL was given (environment or config file), not defaulted."""
    return "redis_url" in settings.model_fields_set


def state_file(settings: Settings) -> Path:
    """Where the embedded default keeps detector state: beside its SQLite database.

    Another database (PostgreSQL without Redis) keeps it in the data directory.
    """
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(url.database).expanduser()
        return database.with_name(database.name + ".state")
    return settings.data_dir / "detector-state.db"


@dataclass
class Runtime:
    settings: Settings
    clock: Clock = field(default=utcnow)
    fetch_concurrency: int = 8
    # Embedded (one process, no broker). Its detector state, de-duplication, leases and
    # pending identities are still the fleet's, in Redis, when HARVESTER_REDIS_URL is set:
    # see ``shares_fleet_state``.
    embedded: bool = False
    _scorer: Scorer | None = field(default=None, init=False, repr=False)
    _scorer_built: float = field(default=0.0, init=False, repr=False)
    _suppressions: list[SuppressionRule] | None = field(default=None, init=False, repr=False)
    _suppressions_read: float = field(default=0.0, init=False, repr=False)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock = utcnow, embedded: bool = False) -> Runtime:
        return cls(settings=settings, clock=clock, embedded=embedded)

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
        timing = FleetTiming.from_settings(self.settings)
        return SessionFactory(
            # Timeouts and retries derive from the task limit (harvester.fleet).
            settings=ClientSettings(
                fetch_concurrency=self.fetch_concurrency,
                connect_timeout=timing.aws_connect_timeout,
                read_timeout=timing.aws_read_timeout,
                max_attempts=timing.aws_max_retries,
            ),
            # S3 requests and AWS errors counted by operation and code, for every client.
            event_hooks=aws_event_hooks(),
        )

    @cached_property
    def public_keys(self) -> KeyCache:
        """CloudTrail's public keys are the same for every source: one cache per process."""
        return KeyCache()

    @property
    def shares_fleet_state(self) -> bool:
        """The one rule for every command that scores (workers, ``run``, ``backfill``, ...).

        A worker, and any process given HARVESTER_REDIS_URL, uses the fleet's Redis: the same
        baselines, the same claims on event ids, so nothing is scored twice and no anomaly
        appears that de-duplication would have prevented. Otherwise (the embedded default)
        state lives in a file beside the database, so ``run --once`` from cron learns across
        runs.
        """
        return not self.embedded or redis_configured(self.settings)

    @cached_property
    def leases(self) -> Leases:
        return RedisLeases(self.redis) if self.shares_fleet_state else LocalLeases()

    @cached_property
    def _store(self) -> StateStore:
        if self.shares_fleet_state:
            return RedisStore(self.redis)
        return FileStore(state_file(self.settings))

    @cached_property
    def pending(self) -> PendingIdentities:
        """Identities whose anomalies wait for ``score.correlate``."""
        return RedisPending(self.redis) if self.shares_fleet_state else MemoryPending()

    def suppressions(self) -> list[SuppressionRule]:
        """The suppressions in force, read once a minute rather than once per batch."""
        now = monotonic()
        if (
            self._suppressions is None
            or now - self._suppressions_read > SUPPRESSIONS_REFRESH_SECONDS
        ):
            with self.sessions() as session:
                self._suppressions = active_suppressions(session, now=self.clock())
            self._suppressions_read = now
        return self._suppressions

    @property
    def scorer(self) -> Scorer:
        """The scorer, with the rules' view of the inventory refreshed every few minutes.

        Rules must know our own accounts (sharing a snapshot with one is not exfiltration)
        and our trail buckets; an inventory change reaches them without a restart.
        """
        now = monotonic()
        if self._scorer is None or now - self._scorer_built > SCORER_REFRESH_SECONDS:
            with self.sessions() as session:
                rules = inventory_rule_config(session)
            config = EngineConfig(
                rules=rules,
                # Redeliveries happen within the lateness window; keep ids a margin longer.
                dedup_ttl=self.settings.lateness_window + timedelta(hours=1),
                # Shorter than the broker's visibility timeout, or a redelivered batch would
                # find its dead worker's claims and score nothing.
                processing_ttl=FleetTiming.from_settings(self.settings).score_claim_ttl,
            )
            self._scorer = Scorer(store=self._store, config=config, clock=self.clock)
            self._scorer_built = now
        return self._scorer

    def close(self) -> None:
        """Release connections; safe to call whether or not they were ever made."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
        store = self.__dict__.get("_store")
        if isinstance(store, FileStore):
            store.close()
