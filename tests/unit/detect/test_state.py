"""MemoryStore: claims with TTLs, hashes, bounds (RedisStore is tested against real Redis)."""

from __future__ import annotations

from harvester.detect.state import HashRead, HashWrite, MemoryStore, StateStore


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_is_a_state_store() -> None:
    assert isinstance(MemoryStore(), StateStore)


def test_claims_are_first_come_and_expire() -> None:
    ticks = Ticks()
    store = MemoryStore(monotonic=ticks)
    assert store.claim(["a", "b", "a"], 10) == [True, True, False]
    assert store.claim(["a", "c"], 10) == [False, True]
    ticks.now = 11
    assert store.claim(["a"], 10) == [True]


def test_confirm_extends_and_release_forgets() -> None:
    ticks = Ticks()
    store = MemoryStore(monotonic=ticks)
    store.claim(["a", "b"], 10)
    store.confirm(["a"], 100)
    store.release(["b"])
    ticks.now = 50
    assert store.claim(["a", "b"], 10) == [False, True]


def test_hash_reads_and_writes() -> None:
    store = MemoryStore()
    store.write(
        [
            HashWrite("h", set={"x": "1", "y": "2"}, set_nx={"y": "9", "z": "3"}, incr={"n": 2}),
            HashWrite("h", incr={"n": 3}, delete=["x"]),
        ]
    )
    (full, some, missing) = store.read([HashRead("h"), HashRead("h", ("y", "q")), HashRead("m")])
    assert full.values == {"y": "2", "z": "3", "n": "5"}
    assert (some.values, some.size) == ({"y": "2"}, 3)
    assert (missing.values, missing.size) == ({}, 0)
    assert sorted(store.sample(["h"], 10)[0]) == ["n", "y", "z"]


def test_hash_ttl() -> None:
    ticks = Ticks()
    store = MemoryStore(monotonic=ticks)
    store.write([HashWrite("h", set={"x": "1"}, ttl=5)])
    ticks.now = 6
    assert store.read([HashRead("h")])[0].size == 0


def test_bounded_number_of_keys_and_claims() -> None:
    store = MemoryStore(max_keys=3, max_claims=2)
    store.write([HashWrite(f"k{i}", set={"x": "1"}) for i in range(5)])
    assert len(store) == 3
    store.claim(["a", "b", "c"], 100)
    assert store.claim(["a"], 100) == [True]  # the oldest claim was dropped


def test_byte_cap_evicts_the_least_recently_used_and_counts() -> None:
    store = MemoryStore(max_bytes=2000)
    for i in range(6):
        store.write([HashWrite(f"k{i}", set={"member": "x" * 50})])
        store.read([HashRead("k0")])  # k0 stays the most recently used
    assert store.estimated_bytes <= 2000
    assert store.evicted_keys == 6 - len(store) > 0
    kept = {k for k in (f"k{i}" for i in range(6)) if store.read([HashRead(k)])[0].size}
    assert {"k0", "k5"} <= kept
    assert "k1" not in kept


def test_estimated_bytes_follow_writes_deletes_and_expiry() -> None:
    ticks = Ticks()
    store = MemoryStore(monotonic=ticks)
    store.write([HashWrite("h", set={"a": "1", "b": "2"}, ttl=5)])
    two = store.estimated_bytes
    store.write([HashWrite("h", delete=["a"])])
    assert 0 < store.estimated_bytes < two
    ticks.now = 6
    assert store.read([HashRead("h")])[0].size == 0
    assert store.estimated_bytes == 0
    store.write([HashWrite("g", set={"a": "1"}), HashWrite("g", delete=["a"])])
    assert store.estimated_bytes == 0
    assert store.evicted_keys == 0  # expiry and deletes are not evictions


def test_claim_cap_counts_what_it_forgets() -> None:
    store = MemoryStore(max_claims=2)
    store.claim(["a", "b", "c", "d"], 100)
    assert store.evicted_claims == 2
    assert store.claim(["a", "d"], 100) == [True, False]
