"""FileStore: the embedded default's detector state in a SQLite file, across processes."""

from __future__ import annotations

import stat
from pathlib import Path

from harvester.detect.file_state import FileStore
from harvester.detect.state import HashRead, HashWrite, MemoryStore, StateStore
from harvester.synth.org import generate, to_event
from tests.integration.detect.test_redis_store import _ops, _reads, _run


class Wall:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_file_store_is_a_state_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s.db")
    assert isinstance(store, StateStore)
    assert stat.S_IMODE((tmp_path / "s.db").stat().st_mode) == 0o600


def test_same_answers_as_memory(tmp_path: Path) -> None:
    memory, file = MemoryStore(), FileStore(tmp_path / "s.db")
    memory.confirm_and_write([], 60, _ops())
    file.confirm_and_write([], 60, _ops())
    claims = ["c1", "c2", "c1", "c3", "c4"]
    assert file.claim_and_read(claims, 60, _reads()) == memory.claim_and_read(claims, 60, _reads())
    assert file.claim_and_read(claims, 60, _reads())[0] == [False] * 5


def test_claims_owners_and_expiry_survive_reopening(tmp_path: Path) -> None:
    wall = Wall()
    first = FileStore(tmp_path / "s.db", now=wall)
    assert first.claim(["a", "b"], 10, owner="task-1") == [True, True]
    first.confirm(["a"], 100)
    first.close()
    again = FileStore(tmp_path / "s.db", now=wall)
    # A pending claim is taken back by its owner only; a confirmed one by nobody.
    assert again.claim(["a", "b"], 10) == [False, False]
    assert again.claim(["a", "b"], 10, owner="task-1") == [False, True]
    wall.now += 50
    again.release(["b"])
    assert again.claim(["a", "b"], 10) == [False, True]
    wall.now += 51
    assert again.claim(["a"], 10) == [True]


def test_hash_ttl_and_sweep(tmp_path: Path) -> None:
    wall = Wall()
    store = FileStore(tmp_path / "s.db", now=wall)
    store.write([HashWrite("h", set={"x": "1"}, ttl=5), HashWrite("k", set={"y": "1"})])
    wall.now += 6
    assert store.read([HashRead("h")])[0].size == 0
    store.write([HashWrite("h", incr={"n": 1})])  # an expired hash starts again empty
    assert store.read([HashRead("h")])[0].values == {"n": "1"}
    wall.now += 7200
    store.write([HashWrite("h", set={"x": "2"}, ttl=5)])
    wall.now += 7200
    FileStore(tmp_path / "s.db", now=wall).close()  # opening sweeps what expired
    store = FileStore(tmp_path / "s.db", now=wall)
    assert store.read([HashRead("h"), HashRead("k")])[1].values == {"y": "1"}
    assert store.sample(["h", "k"], 5) == [[], ["y"]]


def test_scoring_gives_the_same_anomalies_as_memory(tmp_path: Path) -> None:
    # Nine days of a generated organization: past the learning period, with its attacks.
    events = [to_event(r, index=i) for i, r in enumerate(generate(days=9, scale=0.03))]
    in_file = _run(FileStore(tmp_path / "s.db"), events)
    assert in_file == _run(MemoryStore(), events)
    assert len(in_file) > 3
