"""Webhook deliveries end to end: outbox rows written with the anomaly, drained to a real
HTTP receiver, signed, each event once (new, escalated, acknowledged, renotify)."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from sqlalchemy.orm import Session, sessionmaker

from harvester.detect import repository as repo
from harvester.detect.model import Severity
from harvester.detect.render import anomaly_record
from harvester.notify.signing import verify
from tests.conftest import FixedClock
from tests.integration.notify.helpers import (
    BOX,
    PUBLIC_URL,
    add_destination,
    attempts,
    outbox,
    run_drain,
    stop_logging,
    store,
)
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-for-tests-0123456789"


def _webhook(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver, **more: object
) -> None:
    add_destination(
        sessions,
        clock,
        name="hook",
        type="webhook",
        url=receiver.url + "/hook",
        secret=SECRET,
        **more,
    )


def test_a_new_anomaly_reaches_the_webhook_signed_once(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    _webhook(sessions, clock, receiver)
    anomaly = stop_logging()
    store(sessions, clock, anomaly)
    (row,) = outbox(sessions)
    assert (row.status, row.event, row.kind, row.subject_id) == (
        "pending",
        "new",
        "anomaly",
        anomaly.id,
    )

    result = run_drain(sessions, clock)
    assert result.outcomes[("hook", "sent")] == 1
    (got,) = receiver.received
    assert got.path == "/hook"
    assert got.headers["X-Harvester-Delivery"] == row.delivery_id
    timestamp = got.headers["X-Harvester-Timestamp"]
    assert timestamp == str(int(clock().timestamp()))
    assert verify(SECRET, timestamp, got.body, got.headers["X-Harvester-Signature-256"])
    assert not verify(
        "another-secret", timestamp, got.body, got.headers["X-Harvester-Signature-256"]
    )
    body = got.json()
    # The fields of `anomalies list --output json`, plus kind, event, url and delivery_id.
    assert body == {
        **anomaly_record(anomaly),
        "kind": "anomaly",
        "event": "new",
        "url": f"{PUBLIC_URL}/anomalies/{anomaly.id}",
        "delivery_id": row.delivery_id,
    }
    (sent,) = outbox(sessions)
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert [(a.outcome, a.http_status) for a in attempts(sessions)] == [("sent", 200)]
    # Nothing more to send: a second drain sends nothing.
    assert run_drain(sessions, clock).sent == 0
    assert len(receiver.received) == 1


def test_repeats_do_not_notify_but_a_rise_ack_and_renotify_do(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    _webhook(sessions, clock, receiver)
    anomaly = stop_logging(severity=Severity.high)
    store(sessions, clock, anomaly)
    # The same anomaly again (a rerun over the same logs, or a repeat that raises its count).
    store(sessions, clock, anomaly)
    store(sessions, clock, msgspec.structs.replace(anomaly, count=5))
    assert [r.event for r in outbox(sessions)] == ["new"]

    clock.advance(timedelta(minutes=5))
    store(sessions, clock, msgspec.structs.replace(anomaly, severity=Severity.critical))
    assert [r.event for r in outbox(sessions)] == ["new", "escalated"]

    clock.advance(timedelta(hours=24))
    store(sessions, clock, anomaly)  # still open, a day later: a reminder
    assert [r.event for r in outbox(sessions)] == ["new", "escalated", "renotify"]

    clock.advance(timedelta(minutes=1))
    with sessions() as session, session.begin():
        repo.ack_anomaly(session, anomaly_id=anomaly.id, clock=clock)
    assert [r.event for r in outbox(sessions)][-1] == "acknowledged"

    run_drain(sessions, clock)
    assert [r.json()["event"] for r in receiver.received] == [
        "new", "escalated", "renotify", "acknowledged",
    ]  # fmt: skip
    assert len({r.headers["X-Harvester-Delivery"] for r in receiver.received}) == 4


def test_an_open_anomaly_not_seen_again_is_reminded_once_per_renotify_after(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    _webhook(sessions, clock, receiver, renotify_after=timedelta(hours=6))
    quiet = stop_logging()
    acked = stop_logging(id="an-acked", dedup_key="a" * 32)
    store(sessions, clock, quiet, acked)
    with sessions() as session, session.begin():
        repo.ack_anomaly(session, anomaly_id=acked.id, clock=clock)
    run_drain(sessions, clock)
    clock.advance(timedelta(hours=5))
    run_drain(sessions, clock)
    assert [r.event for r in outbox(sessions) if r.subject_id == quiet.id] == ["new"]
    clock.advance(timedelta(hours=1))
    run_drain(sessions, clock)
    run_drain(sessions, clock)  # a second drain at the same time adds nothing
    assert [r.event for r in outbox(sessions) if r.subject_id == quiet.id] == ["new", "renotify"]
    assert [r.event for r in outbox(sessions) if r.subject_id == acked.id] == [
        "new",
        "acknowledged",
    ]
    assert [r.json()["event"] for r in receiver.received if r.json()["id"] == quiet.id] == [
        "new", "renotify",
    ]  # fmt: skip


def test_the_outbox_row_commits_and_rolls_back_with_the_anomaly(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    _webhook(sessions, clock, receiver)
    with sessions() as session:
        repo.save_anomalies(session, [stop_logging()], clock=clock)
        session.rollback()
    assert outbox(sessions) == []
    with sessions() as session:
        assert repo.list_anomalies(session) == []


def test_routing_filters_keep_findings_from_destinations_that_did_not_ask(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    _webhook(sessions, clock, receiver, min_severity=Severity.critical)
    add_destination(
        sessions,
        clock,
        name="other-account",
        type="webhook",
        url=receiver.url,
        accounts=("999988887777",),
    )
    add_destination(
        sessions, clock, name="eks-only", type="webhook", url=receiver.url, detectors=("eks.*",)
    )
    add_destination(
        sessions,
        clock,
        name="everything",
        type="webhook",
        url=receiver.url,
        min_severity=Severity.info,
    )
    store(sessions, clock, stop_logging(severity=Severity.high))
    assert [r.destination for r in outbox(sessions)] == ["everything"]


def test_the_secret_is_stored_encrypted(
    sessions: sessionmaker[Session], clock: FixedClock, receiver: Receiver
) -> None:
    _webhook(sessions, clock, receiver)
    from harvester.db.notify_models import DestinationRecord

    with sessions() as session:
        (record,) = session.query(DestinationRecord).all()
    assert SECRET not in (record.secret_encrypted or "")
    assert SECRET not in str(record.settings)
    assert BOX.decrypt(record.secret_encrypted or "") == SECRET
