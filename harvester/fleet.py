"""Fleet timing, derived from one setting so the limits can never contradict each other.

Redis hands an unacknowledged task to another worker after the visibility timeout, so it
must exceed the hard time limit; a source's lease must outlive the task that holds it, yet
expire before the task could be redelivered; beat's leader lock spans a few dispatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from harvester.settings import Settings

# The logical queues: what tasks, metrics labels and `harvester worker --queues` name. Their
# names on the broker are settings (HARVESTER_HARVEST_QUEUE, HARVESTER_SCORE_QUEUE,
# HARVESTER_NOTIFY_QUEUE).
LOGICAL_QUEUES = ("harvest", "score", "notify")


def queue_names(settings: Settings) -> dict[str, str]:
    """Logical queue → its name on the broker."""
    return {
        "harvest": settings.harvest_queue,
        "score": settings.score_queue,
        "notify": settings.notify_queue,
    }


def broker_queues(requested: str, settings: Settings) -> list[str]:
    """The broker names of a comma-separated list of logical queues (``harvest,score``).

    A queue's configured broker name is accepted too, so a command line written for one
    installation's names keeps working. Raises ValueError naming the queue and the choices.
    """
    names = queue_names(settings)
    configured = set(names.values())
    resolved: list[str] = []
    for raw in requested.split(","):
        queue = raw.strip()
        if queue in names:
            resolved.append(names[queue])
        elif queue in configured:
            resolved.append(queue)
        else:
            choices = ", ".join(f"{logical} (= {name})" for logical, name in names.items())
            raise ValueError(f"unknown queue {queue!r}: use {choices}")
    return list(dict.fromkeys(resolved))


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
    # botocore's client timeouts and retries (after the first try), so that one AWS call
    # that never answers ends well within the soft limit (see aws_call_limits).
    aws_connect_timeout: float = 5.0
    aws_read_timeout: float = 15.0
    aws_max_retries: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> FleetTiming:
        hard = settings.task_time_limit.total_seconds()
        dispatch = settings.dispatch_interval.total_seconds()
        visibility = max(2 * hard, hard + 60)
        soft = max(1.0, hard * 0.8)
        connect, read, retries = aws_call_limits(soft)
        return cls(
            hard_time_limit=hard,
            soft_time_limit=soft,
            source_lease_ttl=timedelta(seconds=hard + 60),
            # Twice the hard limit: a running task is never handed out twice, and a task lost
            # with its worker (or with a restarted Redis) comes back within minutes.
            visibility_timeout=visibility,
            dispatch_interval=dispatch,
            leader_ttl=timedelta(seconds=3 * dispatch),
            score_claim_ttl=timedelta(seconds=(hard + visibility) / 2),
            aws_connect_timeout=connect,
            aws_read_timeout=read,
            aws_max_retries=retries,
        )


# An AWS call may use a quarter of the task's soft limit, all its attempts together: a task
# makes several calls, and one endpoint that accepts connections and never answers must
# fail the call (a retryable error, so the task retries) long before the limit kills it.
AWS_CALL_SHARE = 0.25
# Below these an attempt fails on an ordinary slow answer (a loaded S3, a cold connection).
MIN_CONNECT_TIMEOUT = 1.0
MIN_READ_TIMEOUT = 5.0
# Per attempt: up to 5 s to connect and 15 s between bytes, beyond which S3 is not coming.
MAX_CONNECT_TIMEOUT = 5.0
MAX_READ_TIMEOUT = 60.0
ATTEMPT_SECONDS = 20.0
MAX_ATTEMPTS = 5


def aws_call_limits(soft_time_limit: float) -> tuple[float, float, int]:
    """(connect timeout, read timeout, retries after the first try) for a soft limit.

    As many attempts of ``ATTEMPT_SECONDS`` as fit in the call's share (2 to 5), each
    splitting its time a quarter to connect and the rest to read. With the default 240 s
    soft limit: 3 attempts of 5 s + 15 s, 60 s at most before the call fails.
    """
    budget = soft_time_limit * AWS_CALL_SHARE
    attempts = int(min(MAX_ATTEMPTS, max(2, budget // ATTEMPT_SECONDS)))
    per_attempt = budget / attempts
    connect = max(MIN_CONNECT_TIMEOUT, min(MAX_CONNECT_TIMEOUT, per_attempt / 4))
    read = max(MIN_READ_TIMEOUT, min(MAX_READ_TIMEOUT, per_attempt - connect))
    return connect, read, attempts - 1
