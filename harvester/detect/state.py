"""Detector state behind a small interface: Redis for the fleet, memory for ``scan``.

The engine talks to state in whole batches: one ``claim_and_read`` (claim the event ids, read
every hash the batch needs) before it decides, one ``confirm_and_write`` (keep the claims,
write every change) once the caller has stored the anomalies. ``RedisStore`` makes each of
them one script call, so a batch costs two round trips whatever its size (three when an
anomaly's explanation samples a baseline). The single-purpose methods remain for callers that
need only one half.

State is a set of small hashes (a baseline of members, burst counters). Every write carries a
TTL, and the engine caps the number of fields it adds to any hash, so idle entities disappear
and busy ones stay bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

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


# The claim value of a caller that names no owner (also spelled out in _CLAIM_AND_READ):
# such a claim is never taken back.
ANONYMOUS = "1"
# A confirmed claim's value (written by _CONFIRM_AND_WRITE too): it belongs to nobody, so no
# retry can take it back.
CONFIRMED = "c"


@runtime_checkable
class StateStore(Protocol):
    def claim(self, keys: Sequence[str], ttl: int, owner: str = ANONYMOUS) -> list[bool]:
        """Mark each key taken for ``ttl`` seconds; True where this call took it first.

        A pending claim of the same ``owner`` is taken again (a retry of a batch whose state
        could not be written); a confirmed claim, or another owner's, never is.
        """
        ...

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        """Keep claimed keys for ``ttl`` seconds from now, owned by nobody."""
        ...

    def release(self, keys: Sequence[str]) -> None:
        """Forget claims, so that the same events can be scored again."""
        ...

    def read(self, reads: Sequence[HashRead]) -> list[HashValue]: ...

    def write(self, writes: Sequence[HashWrite]) -> None: ...

    def claim_and_read(
        self, keys: Sequence[str], ttl: int, reads: Sequence[HashRead], owner: str = ANONYMOUS
    ) -> tuple[list[bool], list[HashValue]]:
        """``claim`` then ``read``, in one round trip where the store has round trips."""
        ...

    def confirm_and_write(self, keys: Sequence[str], ttl: int, writes: Sequence[HashWrite]) -> None:
        """``confirm`` then ``write``, in one round trip where the store has round trips."""
        ...

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        """Up to ``count`` field names of each hash (for explanations; order not defined)."""
        ...


# --- Redis ---------------------------------------------------------------------------------

# Both scripts take their whole work as one msgpack argument and answer with one msgpack
# string. redis-py packs every argument and parses every reply in Python, which cost more
# than Redis spent on the commands (a batch claims, reads and writes a few thousand keys and
# fields), so even the keys travel inside the argument rather than as KEYS. (The keys of a
# batch span hash slots whichever way they are passed: this store is for a single Redis,
# not a cluster.) Redis runs the same commands in the same order as separate calls would;
# a script holds Redis while it runs, so ``RedisStore`` splits very large batches.

# ARGV[1]: {claim TTL in seconds, claim keys, reads: {key, field names or false for all},
# owner}. Answer: {"1"/"0" per claim (taken by this call: SET NX, or a pending claim of the
# same named owner, once per key), per read {HLEN, HMGET values} or the HGETALL list}.
# '1' is ANONYMOUS below: it names nobody, so it takes nothing back.
_CLAIM_AND_READ = """
local work = cmsgpack.unpack(ARGV[1])
local ttl, keys, reads, owner = work[1], work[2], work[3], work[4]
local claimed = {}
local seen = {}
for i, key in ipairs(keys) do
  local taken = false
  if not seen[key] then
    seen[key] = true
    if redis.call('SET', key, owner, 'NX', 'EX', ttl) then
      taken = true
    elseif owner ~= '1' and redis.call('GET', key) == owner then
      redis.call('EXPIRE', key, ttl)
      taken = true
    end
  end
  claimed[i] = taken and '1' or '0'
end
local values = {}
for j, read in ipairs(reads) do
  local key, fields = read[1], read[2]
  if fields == false then
    values[j] = redis.call('HGETALL', key)
  else
    local found = {}
    -- unpack() is bounded by Lua's stack: long field lists go in slices.
    for s = 1, #fields, 1000 do
      local part = redis.call('HMGET', key, unpack(fields, s, math.min(s + 999, #fields)))
      for _, value in ipairs(part) do found[#found + 1] = value end
    end
    values[j] = {redis.call('HLEN', key), found}
  end
end
return cmsgpack.pack({table.concat(claimed), values})
"""

# ARGV[1]: {claim TTL in seconds, claim keys, writes: {key, set, set_nx, incr (flat
# name/value lists), delete (names), TTL or false}}. Like a pipeline, a failing command does
# not stop the others; the last error is returned.
_CONFIRM_AND_WRITE = """
local failed = nil
local function run(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then failed = reply.err end
end
local work = cmsgpack.unpack(ARGV[1])
local ttl, keys, writes = work[1], work[2], work[3]
for _, key in ipairs(keys) do run('SET', key, 'c', 'XX', 'EX', ttl) end
for _, op in ipairs(writes) do
  local key, set, set_nx, incr, delete = op[1], op[2], op[3], op[4], op[5]
  for s = 1, #set, 1000 do run('HSET', key, unpack(set, s, math.min(s + 999, #set))) end
  for s = 1, #set_nx, 2 do run('HSETNX', key, set_nx[s], set_nx[s + 1]) end
  for s = 1, #incr, 2 do run('HINCRBY', key, incr[s], incr[s + 1]) end
  for s = 1, #delete, 1000 do
    run('HDEL', key, unpack(delete, s, math.min(s + 999, #delete)))
  end
  if op[6] then run('EXPIRE', key, op[6]) end
end
if failed then return redis.error_reply(failed) end
return #keys + #writes
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _flat(mapping: dict[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]


def _op(write: HashWrite) -> list[Any]:
    return [
        write.key,
        _flat(write.set),
        _flat(write.set_nx),
        [item for name, amount in write.incr.items() for item in (name, str(amount))],
        write.delete,
        write.ttl if write.ttl is not None else False,
    ]


def _value(read: HashRead, reply: Any) -> HashValue:
    if read.fields is None:
        values = dict(zip(reply[::2], reply[1::2], strict=True))
        return HashValue(values, len(values))
    size, found = reply
    return HashValue(
        {name: value for name, value in zip(read.fields, found, strict=True) if value is not False},
        int(size),
    )


class RedisStore:
    """State in Redis; every method is one script call (a few for batches above ``chunk``)."""

    def __init__(self, client: redis.Redis, *, chunk: int = 5000) -> None:
        self._client = client
        self._claim_and_read = client.register_script(_CLAIM_AND_READ)
        self._confirm_and_write = client.register_script(_CONFIRM_AND_WRITE)
        # A script call holds Redis for its duration; chunks of keys keep each call short.
        self._chunk = chunk

    def _pieces(
        self, keys: Sequence[str], items: Sequence[Any]
    ) -> list[tuple[Sequence[str], Sequence[Any]]]:
        """Claims first, then items, at most ``chunk`` keys a call; none when both are empty."""
        pieces: list[tuple[Sequence[str], Sequence[Any]]] = []
        k = i = 0
        while k < len(keys) or i < len(items):
            part = keys[k : k + self._chunk]
            k += len(part)
            more = items[i : i + self._chunk - len(part)]
            i += len(more)
            pieces.append((part, more))
        return pieces

    def claim_and_read(
        self, keys: Sequence[str], ttl: int, reads: Sequence[HashRead], owner: str = ANONYMOUS
    ) -> tuple[list[bool], list[HashValue]]:
        taken: list[bool] = []
        values: list[HashValue] = []
        for part, some in self._pieces(keys, reads):
            specs = [(r.key, r.fields if r.fields is not None else False) for r in some]
            raw = self._claim_and_read(args=[_encode((ttl, part, specs, owner))])
            claimed, replies = _decode(raw)
            taken.extend(flag == "1" for flag in claimed)
            values.extend(_value(r, reply) for r, reply in zip(some, replies, strict=True))
        return taken, values

    def confirm_and_write(self, keys: Sequence[str], ttl: int, writes: Sequence[HashWrite]) -> None:
        for part, some in self._pieces(keys, writes):
            self._confirm_and_write(args=[_encode((ttl, part, [_op(w) for w in some]))])

    def claim(self, keys: Sequence[str], ttl: int, owner: str = ANONYMOUS) -> list[bool]:
        return self.claim_and_read(keys, ttl, (), owner)[0]

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        self.confirm_and_write(keys, ttl, ())

    def release(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), self._chunk):
            self._client.delete(*keys[start : start + self._chunk])

    def read(self, reads: Sequence[HashRead]) -> list[HashValue]:
        return self.claim_and_read((), 0, reads)[1]

    def write(self, writes: Sequence[HashWrite]) -> None:
        self.confirm_and_write((), 0, writes)

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hrandfield(key, count)
        return [[_text(v) for v in (reply or [])] for reply in pipe.execute()]


# --- memory -----------------------------------------------------------------------------------


def claims_taken(
    keys: Sequence[str], held: Mapping[str, tuple[float, str]], *, owner: str, now: float
) -> list[bool]:
    """Which of ``keys`` a claim takes, given the claims ``held`` (key -> expiry, owner).

    A key is taken once per call, when nobody holds it, its claim expired, or it is a
    pending claim of the same named owner (what ``_CLAIM_AND_READ`` does in Redis).
    """
    out: list[bool] = []
    seen: set[str] = set()
    for key in keys:
        found = held.get(key)
        mine = owner != ANONYMOUS and found is not None and found[1] == owner
        if key in seen or (found is not None and found[0] > now and not mine):
            out.append(False)
            continue
        seen.add(key)
        out.append(True)
    return out


# What a hash costs in this process beyond its characters, in bytes: measured with
# tracemalloc on baselines of a generated input with millions of principals (a hash of three
# fields cost about 745 bytes). A claim costs about CLAIM_BYTES.
_HASH_BYTES = 360
_FIELD_BYTES = 100
CLAIM_BYTES = 260


def _cost(key: str, data: dict[str, str]) -> int:
    return (
        _HASH_BYTES
        + len(key)
        + _FIELD_BYTES * len(data)
        + sum(map(len, data))
        + sum(map(len, data.values()))
    )


class MemoryStore:
    """State in this process, for ``harvester scan`` and tests.

    Bounded: at most ``max_keys`` hashes of at most ``max_bytes`` in all (estimated, see
    ``_cost``) and ``max_claims`` claimed ids, the least recently used going first; what
    the caps pushed out is counted in ``evicted_keys`` and ``evicted_claims``. An evicted
    baseline is learnt again (a member may be reported new once more); an evicted claim lets
    a duplicate of its event be scored again. TTLs are honoured against ``monotonic``.
    """

    def __init__(
        self,
        *,
        max_keys: int = 1_000_000,
        max_claims: int = 2_000_000,
        max_bytes: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # key -> (expiry, fields, estimated bytes)
        self._hashes: OrderedDict[str, tuple[float, dict[str, str], int]] = OrderedDict()
        self._claims: OrderedDict[str, tuple[float, str]] = OrderedDict()  # expiry, owner
        self._max_keys = max_keys
        self._max_claims = max_claims
        self._max_bytes = max_bytes
        self._bytes = 0
        self._now = monotonic
        self.evicted_keys = 0
        self.evicted_claims = 0

    @property
    def estimated_bytes(self) -> int:
        """What the hashes are estimated to cost (claims: ``CLAIM_BYTES`` each)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._hashes)

    def claim(self, keys: Sequence[str], ttl: int, owner: str = ANONYMOUS) -> list[bool]:
        now = self._now()
        claims = self._claims
        out = claims_taken(keys, claims, owner=owner, now=now)
        for key, taken in zip(keys, out, strict=True):
            if taken:
                claims[key] = (now + ttl, owner)
                claims.move_to_end(key)
        while len(claims) > self._max_claims:
            claims.popitem(last=False)
            self.evicted_claims += 1
        return out

    def confirm(self, keys: Sequence[str], ttl: int) -> None:
        expiry = self._now() + ttl
        for key in keys:
            if key in self._claims:
                self._claims[key] = (expiry, CONFIRMED)

    def claim_and_read(
        self, keys: Sequence[str], ttl: int, reads: Sequence[HashRead], owner: str = ANONYMOUS
    ) -> tuple[list[bool], list[HashValue]]:
        return self.claim(keys, ttl, owner), self.read(reads)

    def confirm_and_write(self, keys: Sequence[str], ttl: int, writes: Sequence[HashWrite]) -> None:
        self.confirm(keys, ttl)
        self.write(writes)

    def release(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._claims.pop(key, None)

    def _get(self, key: str, now: float) -> dict[str, str] | None:
        entry = self._hashes.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._hashes[key]
            self._bytes -= entry[2]
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
            if entry is not None:
                self._bytes -= entry[2]
            if entry is None or entry[0] <= now:
                data: dict[str, str] = {}
                expiry = float("inf")
            else:
                expiry, data, _ = entry
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
                cost = _cost(op.key, data)
                self._bytes += cost
                self._hashes[op.key] = (expiry, data, cost)
                self._hashes.move_to_end(op.key)
            else:
                self._hashes.pop(op.key, None)
        budget = self._max_bytes
        while len(self._hashes) > self._max_keys or (budget is not None and self._bytes > budget):
            self._bytes -= self._hashes.popitem(last=False)[1][2]
            self.evicted_keys += 1

    def sample(self, keys: Sequence[str], count: int) -> list[list[str]]:
        now = self._now()
        out: list[list[str]] = []
        for key in keys:
            data = self._get(key, now) or {}
            out.append(list(data)[:count])
        return out
