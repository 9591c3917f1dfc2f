"""Login throttling: growing delays per client address and per username, in Redis or memory.

The rules (docs/operations.md, "Console login throttling"):

- Failures are counted per client address (an IPv6 client by its /64) and per username,
  whoever tried it. A count is forgotten ``window`` after its last failure.
- After ``free_failures`` failures, the next attempt must wait ``base_delay``, doubling with
  each further failure up to ``max_delay``. An attempt that comes too early is refused
  without checking its password, so waiting is the only way to guess faster.
- The address delay always applies: one address spraying many usernames slows down.
- The username delay applies only to addresses that have failed themselves: an address with
  no recent failure always has its password checked, so failures against ``admin`` from
  elsewhere never lock the real admin out, while each address of a distributed guesser gets
  one free try before the username's delay applies to it too.

State lives in Redis when the console has one configured, so it holds across processes and
restarts; otherwise in this process's memory, bounded in size.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from redis import Redis, RedisError

from harvester.clock import Clock

__all__ = [
    "FailureStore",
    "LoginThrottle",
    "MemoryFailures",
    "RedisFailures",
    "ThrottleUnavailable",
    "address_key",
]


class ThrottleUnavailable(RuntimeError):
    """The shared failure counts cannot be read or written: logins are refused meanwhile."""


@dataclass(frozen=True)
class Failures:
    count: int
    last: float  # epoch seconds of the latest failure


class FailureStore(Protocol):
    def get(self, key: str, *, now: float) -> Failures | None:
        """The failures recorded under ``key`` within the window, or None."""

    def add(self, key: str, *, now: float) -> None:
        """Record one failure under ``key`` at ``now``."""


def _fresh(failures: Failures | None, now: float, window: timedelta) -> Failures | None:
    if failures is None or now - failures.last >= window.total_seconds():
        return None
    return failures


@dataclass
class MemoryFailures:
    """Failures in this process; the oldest keys go first when ``max_keys`` is reached."""

    window: timedelta
    max_keys: int = 10_000
    _entries: OrderedDict[str, Failures] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str, *, now: float) -> Failures | None:
        with self._lock:
            return _fresh(self._entries.get(key), now, self.window)

    def add(self, key: str, *, now: float) -> None:
        with self._lock:
            previous = _fresh(self._entries.pop(key, None), now, self.window)
            self._entries[key] = Failures((previous.count if previous else 0) + 1, now)
            # Bounds the memory made-up usernames can take.
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)


class RedisFailures:
    """Failures in Redis: one hash per key (count, last failure), expiring after the window."""

    def __init__(
        self, redis: Redis, *, window: timedelta, prefix: str = "harvester:login-failures:"
    ) -> None:
        self._redis = redis
        self.window = window
        self._prefix = prefix

    def get(self, key: str, *, now: float) -> Failures | None:
        try:
            count, last = self._redis.hmget(self._prefix + key, ["n", "t"])
        except RedisError as exc:
            raise _unavailable(exc) from exc
        if count is None or last is None:
            return None
        return _fresh(Failures(int(count), float(last)), now, self.window)

    def add(self, key: str, *, now: float) -> None:
        name = self._prefix + key
        stale = self.get(key, now=now) is None
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                if stale:  # older than the window by the injected clock, though Redis kept it
                    pipe.delete(name)
                pipe.hincrby(name, "n", 1)
                pipe.hset(name, "t", repr(now))
                pipe.expire(name, int(self.window.total_seconds()) + 1)
                pipe.execute()
        except RedisError as exc:
            raise _unavailable(exc) from exc


def _unavailable(exc: RedisError) -> ThrottleUnavailable:
    # Fail closed: without the counts, guessing would be unlimited.
    return ThrottleUnavailable(
        f"the login throttle's Redis (HARVESTER_REDIS_URL) does not answer ({exc}); "
        "logins are refused until it does"
    )


def address_key(client: str) -> str:
    """The address a client is counted under: an IPv6 address by its /64, as one host gets."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return f"addr:{client[:100]}"
    if address.version == 6:
        return f"addr:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"addr:{address}"


def _user_key(username: str) -> str:
    # Hashed: the store holds whatever an attacker typed, and need not show it.
    return "user:" + hashlib.sha256(username.lower().encode()).hexdigest()[:32]


@dataclass
class LoginThrottle:
    clock: Clock
    store: FailureStore
    free_failures: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)

    def delay(self, count: int) -> float:
        """Seconds to wait after the last of ``count`` failures."""
        if count < self.free_failures:
            return 0.0
        doublings = min(count - self.free_failures, 32)
        growing: float = self.base_delay.total_seconds() * 2.0**doublings
        return min(growing, self.max_delay.total_seconds())

    def _remaining(self, failures: Failures | None, now: float) -> float:
        if failures is None:
            return 0.0
        return max(0.0, failures.last + self.delay(failures.count) - now)

    def wait(self, client: str, username: str) -> timedelta:
        """How long this client must wait before trying ``username`` (zero: go ahead)."""
        now = self.clock().timestamp()
        by_address = self.store.get(address_key(client), now=now)
        if by_address is None:
            return timedelta(0)
        by_user = self.store.get(_user_key(username), now=now)
        return timedelta(
            seconds=max(self._remaining(by_address, now), self._remaining(by_user, now))
        )

    def failed(self, client: str, username: str) -> None:
        now = self.clock().timestamp()
        self.store.add(address_key(client), now=now)
        self.store.add(_user_key(username), now=now)
