"""RedisStore against a real Redis: semantics, round trips, TTLs, same answers as memory."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from harvester.detect.engine import EngineConfig, Scorer
from harvester.detect.state import HashRead, HashWrite, MemoryStore, RedisStore
from harvester.synth.org import ATTACKS, default_org, generate, to_event
from tests.unit.detect.builders import NOW, ct, sso

pytestmark = pytest.mark.integration


def test_claims_are_set_nx_with_ttl(redis_client: Any) -> None:
    store = RedisStore(redis_client)
    assert store.claim(["a", "b", "a"], 60) == [True, True, False]
    assert store.claim(["a", "c"], 60) == [False, True]
    assert 0 < redis_client.ttl("a") <= 60
    store.confirm(["a"], 3600)
    assert redis_client.ttl("a") > 60
    store.release(["a"])
    assert store.claim(["a"], 60) == [True]


def test_hashes(redis_client: Any) -> None:
    store = RedisStore(redis_client)
    store.write(
        [
            HashWrite(
                "h", set={"x": "1", "y": "2"}, set_nx={"y": "9", "z": "3"}, incr={"n": 2}, ttl=100
            ),
            HashWrite("h", incr={"n": 3}, delete=["x"], ttl=100),
        ]
    )
    full, some, missing = store.read([HashRead("h"), HashRead("h", ("y", "q")), HashRead("m")])
    assert full.values == {"y": "2", "z": "3", "n": "5"}
    assert (some.values, some.size) == ({"y": "2"}, 3)
    assert (missing.values, missing.size) == ({}, 0)
    assert sorted(store.sample(["h"], 10)[0]) == ["n", "y", "z"]
    assert 0 < redis_client.ttl("h") <= 100


class _Counting:
    """Counts round trips: pipeline executions and script calls."""

    def __init__(self, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trips = 0
        original = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = original(*args, **kwargs)
            execute = pipe.execute

            def counted(*a: Any, **k: Any) -> Any:
                self.trips += 1
                return execute(*a, **k)

            pipe.execute = counted
            return pipe

        monkeypatch.setattr(client, "pipeline", pipeline)
        evalsha = client.evalsha

        def counted_evalsha(*a: Any, **k: Any) -> Any:
            self.trips += 1
            return evalsha(*a, **k)

        monkeypatch.setattr(client, "evalsha", counted_evalsha)


def test_a_batch_costs_a_few_round_trips_whatever_its_size(
    redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisStore(redis_client)
    scorer = Scorer(store=store, clock=lambda: NOW)
    scorer.score_and_commit([ct("ListBuckets", "s3", identity=sso())])  # scripts loaded
    counter = _Counting(redis_client, monkeypatch)
    events = [ct("ListBuckets", "s3", identity=sso(f"p{i % 50}@example.com")) for i in range(800)]
    scorer.score_and_commit(events)
    # claim with read, confirm with write; no anomaly so no sample read.
    assert counter.trips == 2


@pytest.fixture
def stream() -> list[Any]:
    attack = next(a for a in ATTACKS if a.id == "stolen-instance-credentials")
    records = generate(days=attack.day + 1, scale=0.08, attacks=[attack])
    return [to_event(r, index=i) for i, r in enumerate(records)]


def _run(store: Any, events: list[Any], prefix: str = "ah:") -> dict[str, int]:
    known = frozenset(a.id for a in default_org().accounts)
    from harvester.detect.rules import RuleConfig

    scorer = Scorer(
        store=store,
        config=EngineConfig(rules=RuleConfig(known_accounts=known), key_prefix=prefix),
        clock=lambda: NOW,
    )
    found: dict[str, int] = {}
    for start in range(0, len(events), 1000):
        for anomaly in scorer.score_and_commit(events[start : start + 1000]).anomalies:
            found[anomaly.dedup_key] = found.get(anomaly.dedup_key, 0) + anomaly.count
    return found


def test_redis_and_memory_give_the_same_anomalies(redis_client: Any, stream: list[Any]) -> None:
    in_redis = _run(RedisStore(redis_client), stream)
    in_memory = _run(MemoryStore(), stream)
    assert in_redis == in_memory
    assert len(in_redis) > 3


def test_every_key_has_a_ttl(redis_client: Any, stream: list[Any]) -> None:
    _run(RedisStore(redis_client), stream[:3000])
    keys = list(redis_client.scan_iter(match="ah:*", count=1000))
    assert keys
    assert all(redis_client.ttl(key) > 0 for key in keys)


def test_reading_no_fields_gives_the_size(redis_client: Any) -> None:
    store = RedisStore(redis_client)
    store.write([HashWrite("h", set={"x": "1"})])
    (value,) = store.read([HashRead("h", ())])
    assert (value.values, value.size) == ({}, 1)


def _ops() -> list[HashWrite]:
    return [
        HashWrite(
            "h1", set={"a": "1", "é": "ü"}, set_nx={"a": "9", "b": "2"}, incr={"n": 4}, ttl=90
        ),
        HashWrite("h2", set={f"f{i}": str(i) for i in range(30)}, ttl=90),
        HashWrite("h1", incr={"n": -1}, delete=["b"]),
        HashWrite("h3", set_nx={"only": "x"}),
    ]


def _reads() -> list[HashRead]:
    return [
        HashRead("h1"),
        HashRead("h1", ("a", "é", "missing")),
        HashRead("h2", tuple(f"f{i}" for i in range(0, 40, 3))),
        HashRead("h3", ()),
        HashRead("nothing"),
    ]


def test_big_batches_split_into_calls_give_the_same_answers(redis_client: Any) -> None:
    memory = MemoryStore()
    whole = RedisStore(redis_client)
    split = RedisStore(redis_client, chunk=3)  # several script calls for each method
    memory.confirm_and_write([], 60, _ops())
    split.confirm_and_write([], 60, _ops())
    claims = ["c1", "c2", "c1", "c3", "c4"]
    expected = memory.claim_and_read(claims, 60, _reads())
    assert split.claim_and_read(claims, 60, _reads()) == expected
    assert expected[0] == [True, True, False, True, True]
    # Claimed by the call above: nothing is taken twice, whichever store answers.
    assert whole.claim_and_read(claims, 60, _reads()) == ([False] * 5, expected[1])
    assert redis_client.ttl("h1") == 90
    assert redis_client.ttl("h3") == -1  # written without a TTL


def test_confirm_and_write_is_one_round_trip(
    redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisStore(redis_client)
    assert store.claim(["c1", "c2"], 60) == [True, True]
    counter = _Counting(redis_client, monkeypatch)
    store.confirm_and_write(["c1", "c2"], 3600, _ops())
    assert counter.trips == 1
    assert redis_client.ttl("c1") > 60
    assert store.read([HashRead("h1", ("n",))])[0].values == {"n": "3"}


def test_long_field_lists_are_read_whole(redis_client: Any) -> None:
    store = RedisStore(redis_client)
    fields = {f"member-{i}": str(i) for i in range(2500)}
    store.write([HashWrite("big", set=fields)])
    (found,) = store.read([HashRead("big", ("absent", *fields))])
    assert found.values == fields
    assert found.size == 2500


def test_a_failing_command_does_not_stop_the_others(redis_client: Any) -> None:
    store = RedisStore(redis_client)
    redis_client.set("plain", "not a hash")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        store.write(
            [
                HashWrite("before", set={"x": "1"}),
                HashWrite("plain", set={"x": "1"}),
                HashWrite("after", incr={"n": 1}, ttl=50),
            ]
        )
    assert redis_client.hgetall("before") == {b"x": b"1"}
    assert redis_client.hgetall("after") == {b"n": b"1"}
    assert 0 < redis_client.ttl("after") <= 50


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_owner_takes_back_its_own_pending_claims_only(kind: str, redis_client: Any) -> None:
    store = MemoryStore() if kind == "memory" else RedisStore(redis_client)
    assert store.claim(["a", "b"], 60, owner="task-1") == [True, True]
    # The same task again (a retry after its state could not be written): its claims.
    assert store.claim(["a", "b", "a"], 60, owner="task-1") == [True, True, False]
    # Another task, or an unnamed caller, finds them taken.
    assert store.claim(["a"], 60, owner="task-2") == [False]
    assert store.claim(["b"], 60) == [False]
    # Once confirmed they belong to nobody: not even their owner scores them again.
    store.confirm(["a"], 3600)
    assert store.claim(["a"], 60, owner="task-1") == [False]
