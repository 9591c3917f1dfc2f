"""Leases in Redis: a token, a TTL, renew and release only by the holder.

Used for the per-source harvest lease and the beat leader lock. The TTL of a source lease is
longer than the task's hard time limit and shorter than the broker's visibility timeout, so a
dead worker's lease expires before its task is redelivered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from redis import Redis

# Compare-and-delete / compare-and-expire: only the holder of the token may act.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


@dataclass
class Lease:
    redis: Redis
    key: str
    ttl: timedelta
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    held: bool = False

    def acquire(self) -> bool:
        ms = int(self.ttl.total_seconds() * 1000)
        self.held = bool(self.redis.set(self.key, self.token, nx=True, px=ms))
        return self.held

    def renew(self) -> bool:
        ms = int(self.ttl.total_seconds() * 1000)
        self.held = bool(self.redis.eval(_RENEW, 1, self.key, self.token, ms))
        return self.held

    def acquire_or_renew(self) -> bool:
        return self.renew() if self.held else self.acquire()

    def release(self) -> None:
        if self.held:
            self.redis.eval(_RELEASE, 1, self.key, self.token)
            self.held = False


def source_lease_key(source_id: int) -> str:
    return f"harvester:lease:source:{source_id}"


LEADER_KEY = "harvester:beat:leader"
