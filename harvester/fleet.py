"""Fleet timing, derived from one setting so the limits can never contradict each other.

Redis hands an unacknowledged task to another worker after the visibility timeout, so it
must exceed the hard time limit; a source's lease must outlive the task that holds it, yet
expire before the task could be redelivered; beat's leader lock spans a few dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from harvester.settings import Settings


@dataclass(frozen=True)
class FleetTiming:
    hard_time_limit: float
    soft_time_limit: float
    source_lease_ttl: timedelta
    visibility_timeout: float
    dispatch_interval: float
    leader_ttl: timedelta
    # A scoring batch's claim on its event ids: it outlives the task (so a slow batch is not
    # scored twice) and expires before the broker redelivers the batch of a dead worker (so
    # the redelivery is scored, not skipped as a duplicate).
    score_claim_ttl: timedelta
    # Beyond this many starts of one message it is a poison message: dead-lettered.
    max_deliveries: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> FleetTiming:
        hard = settings.task_time_limit.total_seconds()
        dispatch = settings.dispatch_interval.total_seconds()
        visibility = max(2 * hard, hard + 60)
        return cls(
            hard_time_limit=hard,
            soft_time_limit=max(1.0, hard * 0.8),
            source_lease_ttl=timedelta(seconds=hard + 60),
            # Twice the hard limit: a running task is never handed out twice, and a task lost
            # with its worker (or with a restarted Redis) comes back within minutes.
            visibility_timeout=visibility,
            dispatch_interval=dispatch,
            leader_ttl=timedelta(seconds=3 * dispatch),
            score_claim_ttl=timedelta(seconds=(hard + visibility) / 2),
        )
