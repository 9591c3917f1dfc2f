"""Incident correlation, deferred from the scoring hot path to one periodic pass.

Correlating after every batch costs a few queries per anomaly; a fleet scoring tens of
thousands of events a second would spend more on it than on detection. So a batch only
records the identities its anomalies belong to, before its database commit, and
``score.correlate`` (sent by beat every dispatch interval) correlates them all at once.

The pending set never loses an identity: each entry carries a counter that every batch
increments, and a pass removes an entry only if its counter is still the one it read. An
identity marked again while a pass runs stays for the next pass; a pass that dies removes
nothing. Marking an identity whose batch then fails to commit costs one empty look-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from harvester.clock import Clock
from harvester.detect.repository import correlate_pending

PENDING_KEY = "ah:correlate:pending"
# An identity whose anomalies are older than this when its pass finally runs is not looked
# at again: a day covers any outage of the correlation task an operator would not notice.
LOOKBACK = timedelta(days=1)

# Removes the fields whose values are still those read (ARGV: field, value, field, value...).
_RELEASE = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


class PendingIdentities(Protocol):
    def mark(self, identities: Iterable[str]) -> None: ...

    def read(self) -> dict[str, str]:
        """Every pending identity, with the counter that ``release`` compares."""
        ...

    def release(self, taken: Mapping[str, str]) -> None:
        """Forget the identities of ``taken`` that were not marked again since ``read``."""
        ...


class RedisPending:
    def __init__(self, client: Redis, key: str = PENDING_KEY) -> None:
        self._client = client
        self._key = key
        self._release = client.register_script(_RELEASE)

    def mark(self, identities: Iterable[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for identity in identities:
            pipe.hincrby(self._key, identity, 1)
        pipe.execute()

    def read(self) -> dict[str, str]:
        raw: dict[bytes, bytes] = self._client.hgetall(self._key)  # type: ignore[assignment]
        return {k.decode(): v.decode() for k, v in raw.items()}

    def release(self, taken: Mapping[str, str]) -> None:
        if taken:
            args = [part for pair in taken.items() for part in pair]
            self._release(keys=[self._key], args=args)


class MemoryPending:
    """The embedded mode's pending set: one process, so a dict does."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def mark(self, identities: Iterable[str]) -> None:
        for identity in identities:
            self._counts[identity] = self._counts.get(identity, 0) + 1

    def read(self) -> dict[str, str]:
        return {identity: str(count) for identity, count in self._counts.items()}

    def release(self, taken: Mapping[str, str]) -> None:
        for identity, count in taken.items():
            if str(self._counts.get(identity)) == count:
                del self._counts[identity]


@dataclass(frozen=True, slots=True)
class CorrelationRun:
    identities: int
    incidents: int


def correlate_marked(
    sessions: sessionmaker[Session],
    pending: PendingIdentities,
    *,
    clock: Clock,
    window: timedelta = timedelta(hours=1),
) -> CorrelationRun:
    """Correlate every pending identity in one pass, then release what was read."""
    taken = pending.read()
    if not taken:
        return CorrelationRun(0, 0)
    with sessions.begin() as session:
        incidents = correlate_pending(
            session, taken, clock=clock, window=window, since=clock() - LOOKBACK
        )
    pending.release(taken)
    return CorrelationRun(len(taken), len(incidents))
