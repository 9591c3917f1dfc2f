"""Detector state behind a small interface: Redis for the fleet, memory for ``scan``.

The engine talks to state in whole batches: one ``claim`` of event ids, one ``read`` of every
hash the batch needs, one ``write`` of every change. ``RedisStore`` turns each call into one
pipelined round trip (or one script call), never one per event.

State is a set of small hashes (a baseline of members, burst counters). Every write carries a
TTL, and the engine caps the number of fields it adds to any hash, so idle entities disappear
and busy ones stay bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import redis

__all__ = [
    "HashRead",
    "HashValue",
    "HashWrite",
    "MemoryStore",
    "RedisStore",
    "StateStore",
]


@dataclass(frozen=True, slots=True)
class HashRead:
    """Read ``fields`` of the hash at ``key`` (all of them when ``fields`` is None)."""

    key: str
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class HashValue:
    """The fields found (absent ones are left out) and the hash's total number of fields."""

    values: dict[str, str]
    size: int


@dataclass(slots=True)
class HashWrite:
    """Changes to one hash, applied in this order: set, set-if-absent, increment, delete."""

    key: str
    set: dict[str, str] = field(default_factory=dict)
    set_nx: dict[str, str] = field(default_factory=dict)
    incr: dict[str, int] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    ttl: int | None = None


@runtime_checkable
class StateStore(Protocol):
    def claim(self, keys: Sequence[str], ttl: int) -> list[bool]:
        """Mark each key taken for ``ttl`` seconds; True where this call took it first."""
        ...

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        """Keep claimed keys for ``ttl`` seconds from now."""
        ...

    def release(self, keys: Sequence[str]) -> None:
        """Forget claims, so that the same events can be scored again."""
        ...

    def read(self, reads: Sequence[HashRead]) -> list[HashValue]: ...

    def write(self, writes: Sequence[HashWrite]) -> None: ...

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        """Up to ``count`` field names of each hash (for explanations; order not defined)."""
        ...


# --- Redis ------------------------------------------------------------------------------------

# SET NX per key in one call: a batch of a thousand ids costs one round trip, and the answer
# says exactly which ids were new.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, '1', 'NX', 'EX', ARGV[1]) then out[i] = 1 else out[i] = 0 end
end
return out
"""
_CONFIRM = """
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return #KEYS
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    """State in Redis; every method is one round trip."""

    def __init__(self, client: redis.Redis, *, chunk: int = 5000) -> None:
        self._client = client
        self._claim = client.register_script(_CLAIM)
        self._confirm = client.register_script(_CONFIRM)
        # A script call holds Redis for its duration; chunks keep each call short.
        self._chunk = chunk

    def claim(self, keys: Sequence[str], ttl: int) -> list[bool]:
        out: list[bool] = []
        for start in range(0, len(keys), self._chunk):
            part = keys[start : start + self._chunk]
            result = self._claim(keys=list(part), args=[ttl])
            out.extend(bool(x) for x in result)
        return out

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        for start in range(0, len(keys), self._chunk):
            self._confirm(keys=list(keys[start : start + self._chunk]), args=[ttl])

    def release(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), self._chunk):
            self._client.delete(*keys[start : start + self._chunk])

    def read(self, reads: Sequence[HashRead]) -> list[HashValue]:
        if not reads:
            return []
        pipe = self._client.pipeline(transaction=False)
        for read in reads:
            if read.fields is None:
                pipe.hgetall(read.key)
            else:
                if read.fields:  # HMGET needs at least one field
                    pipe.hmget(read.key, read.fields)
                pipe.hlen(read.key)
        replies = pipe.execute()
        out: list[HashValue] = []
        pos = 0
        for read in reads:
            if read.fields is None:
                raw: dict[bytes | str, bytes | str] = replies[pos]
                pos += 1
                values = {_text(k): _text(v) for k, v in raw.items()}
                out.append(HashValue(values, len(values)))
            else:
                found = replies[pos] if read.fields else []
                pos += 1 if read.fields else 0
                size = int(replies[pos])
                pos += 1
                values = {
                    name: _text(value)
                    for name, value in zip(read.fields, found, strict=True)
                    if value is not None
                }
                out.append(HashValue(values, size))
        return out

    def write(self, writes: Sequence[HashWrite]) -> None:
        if not writes:
            return
        pipe = self._client.pipeline(transaction=False)
        for op in writes:
            if op.set:
                pipe.hset(op.key, items=[x for pair in op.set.items() for x in pair])
            for name, value in op.set_nx.items():
                pipe.hsetnx(op.key, name, value)
            for name, amount in op.incr.items():
                pipe.hincrby(op.key, name, amount)
            if op.delete:
                pipe.hdel(op.key, *op.delete)
            if op.ttl is not None:
                pipe.expire(op.key, op.ttl)
        pipe.execute()

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hrandfield(key, count)
        return [[_text(v) for v in (reply or [])] for reply in pipe.execute()]


# --- memory -----------------------------------------------------------------------------------


class MemoryStore:
    """State in this process, for ``harvester scan``, the embedded default and tests.

    Bounded: at most ``max_keys`` hashes and ``max_claims`` claimed ids, the least recently
    used going first. TTLs are honoured against ``monotonic`` (seconds).
    """

    def __init__(
        self,
        *,
        max_keys: int = 1_000_000,
        max_claims: int = 2_000_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hashes: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._claims: OrderedDict[str, float] = OrderedDict()
        self._max_keys = max_keys
        self._max_claims = max_claims
        self._now = monotonic

    def __len__(self) -> int:
        return len(self._hashes)

    def claim(self, keys: Sequence[str], ttl: int) -> list[bool]:
        now = self._now()
        out: list[bool] = []
        claims = self._claims
        for key in keys:
            expiry = claims.get(key)
            if expiry is not None and expiry > now:
                out.append(False)
                continue
            claims[key] = now + ttl
            claims.move_to_end(key)
            out.append(True)
        while len(claims) > self._max_claims:
            claims.popitem(last=False)
        return out

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        expiry = self._now() + ttl
        for key in keys:
            if key in self._claims:
                self._claims[key] = expiry

    def release(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._claims.pop(key, None)

    def _get(self, key: str, now: float) -> dict[str, str] | None:
        entry = self._hashes.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._hashes[key]
            return None
        self._hashes.move_to_end(key)
        return entry[1]

    def read(self, reads: Sequence[HashRead]) -> list[HashValue]:
        now = self._now()
        out: list[HashValue] = []
        for read in reads:
            data = self._get(read.key, now)
            if data is None:
                out.append(HashValue({}, 0))
            elif read.fields is None:
                out.append(HashValue(dict(data), len(data)))
            else:
                values = {f: data[f] for f in read.fields if f in data}
                out.append(HashValue(values, len(data)))
        return out

    def write(self, writes: Sequence[HashWrite]) -> None:
        now = self._now()
        for op in writes:
            entry = self._hashes.get(op.key)
            if entry is None or entry[0] <= now:
                data: dict[str, str] = {}
                expiry = float("inf")
            else:
                expiry, data = entry
            data.update(op.set)
            for name, value in op.set_nx.items():
                data.setdefault(name, value)
            for name, amount in op.incr.items():
                data[name] = str(int(data.get(name, "0")) + amount)
            for name in op.delete:
                data.pop(name, None)
            if op.ttl is not None:
                expiry = now + op.ttl
            if data:
                self._hashes[op.key] = (expiry, data)
                self._hashes.move_to_end(op.key)
            else:
                self._hashes.pop(op.key, None)
        while len(self._hashes) > self._max_keys:
            self._hashes.popitem(last=False)

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        now = self._now()
        out: list[list[str]] = []
        for key in keys:
            data = self._get(key, now) or {}
            out.append(list(data)[:count])
        return out
