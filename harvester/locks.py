"""Leases in Redis: a token, a TTL, renew and release only by the holder.

Used for the per-source harvest lease and the beat leader lock. The TTL of a source lease is
longer than the task's hard time limit and shorter than the broker's visibility timeout, so a
dead worker's lease expires before its task is redelivered.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

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


class LeaseLike(Protocol):
    held: bool

    def acquire(self) -> bool: ...
    def release(self) -> None: ...


class Leases(Protocol):
    """Where leases live: Redis for a fleet, this process for the embedded default."""

    def lease(self, key: str, ttl: timedelta) -> LeaseLike: ...
    def busy(self, keys: Sequence[str]) -> list[bool]: ...


@dataclass
class RedisLeases:
    redis: Redis

    def lease(self, key: str, ttl: timedelta) -> LeaseLike:
        return Lease(self.redis, key, ttl)

    def busy(self, keys: Sequence[str]) -> list[bool]:
        # MGET in chunks: one round trip per thousand sources, not one command each.
        flags: list[bool] = []
        for start in range(0, len(keys), 1000):
            values = self.redis.mget(keys[start : start + 1000])
            flags.extend(value is not None for value in values)
        return flags


@dataclass
class _LocalLease:
    owner: LocalLeases
    key: str
    ttl: timedelta
    held: bool = False

    def acquire(self) -> bool:
        now = time.monotonic()
        with self.owner.lock:
            expiry = self.owner.expiries.get(self.key)
            if expiry is not None and expiry > now:
                return False
            self.owner.expiries[self.key] = now + self.ttl.total_seconds()
            self.held = True
            return True

    def release(self) -> None:
        with self.owner.lock:
            if self.held:
                self.owner.expiries.pop(self.key, None)
                self.held = False


@dataclass
class LocalLeases:
    """Leases within one process (the embedded default: one machine, no Redis)."""

    expiries: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lease(self, key: str, ttl: timedelta) -> LeaseLike:
        return _LocalLease(self, key, ttl)

    def busy(self, keys: Sequence[str]) -> list[bool]:
        now = time.monotonic()
        with self.lock:
            return [self.expiries.get(key, 0.0) > now for key in keys]
