"""Deferred correlation: batches mark identities, one pass chains them, nothing is forgotten."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from harvester import correlation
from harvester.batches import BatchBuilder
from harvester.correlation import MemoryPending, PendingIdentities, RedisPending
from harvester.db.anomaly_models import IncidentAnomaly, IncidentRecord
from harvester.events import Event
from harvester.pipeline import correlate, score_batch
from harvester.runtime import Runtime
from tests.unit.detect.builders import T0, ct, sso


@pytest.fixture(params=["memory", "redis"])
def pending(request: pytest.FixtureRequest) -> PendingIdentities:
    if request.param == "memory":
        return MemoryPending()
    return RedisPending(request.getfixturevalue("redis_client"), key="test:pending")


def test_an_identity_marked_during_a_pass_stays_for_the_next(pending: PendingIdentities) -> None:
    pending.mark(["alice", "bob"])
    taken = pending.read()
    assert set(taken) == {"alice", "bob"}
    pending.mark(["alice"])  # a batch commits while the pass runs
    pending.release(taken)
    assert set(pending.read()) == {"alice"}
    pending.release(pending.read())
    assert pending.read() == {}


def _chain() -> list[Event]:
    """Reconnaissance, persistence and evasion by one identity within minutes."""
    recon = [
        ct("ListUsers", "iam", identity=sso(), error="AccessDenied", when=T0 + timedelta(seconds=i))
        for i in range(35)
    ]
    key = ct(
        "CreateAccessKey",
        identity=sso(),
        params={"userName": "bob"},
        when=T0 + timedelta(minutes=5),
    )
    stop = ct(
        "StopLogging",
        "cloudtrail",
        identity=sso(),
        params={"name": "t"},
        when=T0 + timedelta(minutes=10),
    )
    return [*recon, key, stop]


def _body(events: list[Event]) -> bytes:
    bodies: list[bytes] = []
    builder = BatchBuilder(emit=lambda body, _n: bodies.append(body))
    for event in events:
        builder.add(event)
    builder.flush()
    (body,) = bodies
    return body


def _incidents(rt: Runtime) -> tuple[int, int]:
    with rt.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(IncidentRecord)) or 0,
            session.scalar(select(func.count()).select_from(IncidentAnomaly)) or 0,
        )


def test_batches_defer_incidents_to_one_pass(runtime: Runtime) -> None:
    summary = score_batch(runtime, body=_body(_chain()))
    assert summary.anomalies == 3
    assert _incidents(runtime) == (0, 0)
    assert len(runtime.pending.read()) == 1

    run = correlate(runtime)
    assert (run.identities, run.incidents) == (1, 1)
    assert _incidents(runtime) == (1, 3)
    assert runtime.pending.read() == {}
    # A pass with nothing pending does nothing.
    assert correlate(runtime).identities == 0


def test_a_failed_pass_forgets_nothing(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    score_batch(runtime, body=_body(_chain()))

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch:
        patch.setattr(correlation, "correlate_pending", broken)
        with pytest.raises(RuntimeError):
            correlate(runtime)
    assert len(runtime.pending.read()) == 1
    assert correlate(runtime).incidents == 1
    assert _incidents(runtime) == (1, 3)
