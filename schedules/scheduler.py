"""Celery beat with a leader lock: run two beats for availability, only one ever sends.

The leader holds ``harvester:beat:leader`` in Redis with a TTL of a few dispatch intervals
and renews it every loop. A standby's loop finds the lock taken and sends nothing; when the
leader dies its lock expires and the standby takes over within that TTL.

The schedule itself is one entry, ``dispatch`` (see ``workers.app``); which sources are due
is read from the database at every dispatch, so inventory changes need no restart.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.beat import Scheduler

from harvester import metrics
from harvester.health_files import health_files_from_env
from harvester.locks import LEADER_KEY, Lease
from workers.app import runtime, timing

log = logging.getLogger(__name__)

# The loop wakes at least this often, to renew the lock well within its TTL.
LOOP_INTERVAL = 5.0


class LeaderScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lease: Lease | None = None
        self._was_leader = False
        self._health = health_files_from_env()
        if self._health is not None:
            self._health.mark_ready()

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            self._lease = Lease(runtime().redis, LEADER_KEY, timing().leader_ttl)
        return self._lease

    def is_leader(self) -> bool:
        try:
            leader = self.lease.acquire_or_renew()
        except Exception as exc:  # noqa: BLE001  a Redis outage must not kill beat: stand by
            log.warning("beat: cannot reach Redis for the leader lock (%s); standing by", exc)
            leader = False
        metrics.record_beat_state(leader=leader)
        if leader != self._was_leader:
            log.info("beat: %s", "now the leader" if leader else "standing by (another leads)")
            self._was_leader = leader
        return leader

    def tick(self, *args: Any, **kwargs: Any) -> float:
        # The heartbeat shows beat's loop is alive, leader or standby (liveness probe).
        if self._health is not None:
            self._health.beat()
        if not self.is_leader():
            return min(LOOP_INTERVAL, timing().dispatch_interval)
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        if self._lease is not None and self._lease.held:
            self._lease.release()
        super().close()
