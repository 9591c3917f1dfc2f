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
