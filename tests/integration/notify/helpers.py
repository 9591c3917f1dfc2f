"""Shared pieces of the notification tests: a database per test, a finding, a destination."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from harvester.crypto import SecretBox
from harvester.db.notify_models import NotificationAttempt, NotificationRecord
from harvester.detect import repository as repo
from harvester.detect.model import Anomaly
from harvester.notify.deliver import DrainResult, Policy, drain
from harvester.notify.model import DestinationSpec
from harvester.notify.senders import SendContext
from harvester.notify.store import upsert_destination
from tests.conftest import FixedClock
from tests.unit.detect.builders import T0, ct, scorer, sso

BOX = SecretBox.from_keys("notify-tests-at-rest-key")
PUBLIC_URL = "https://harvester.example.com"


def stop_logging(**changes: Any) -> Anomaly:
    """A real detector's anomaly (CloudTrail StopLogging), with ``changes`` applied."""
    (stop,) = (
        scorer()
        .score_and_commit(
            [ct("StopLogging", "cloudtrail", identity=sso(), params={"name": "t"}, when=T0)]
        )
        .anomalies
    )
    return msgspec.structs.replace(stop, **changes)


def add_destination(sessions: sessionmaker[Session], clock: FixedClock, **fields: Any) -> None:
    with sessions() as session, session.begin():
        upsert_destination(session, DestinationSpec(**fields), box=BOX, clock=clock)


def store(sessions: sessionmaker[Session], clock: FixedClock, *anomalies: Anomaly) -> None:
    with sessions() as session, session.begin():
        repo.save_anomalies(session, list(anomalies), clock=clock)


def run_drain(
    sessions: sessionmaker[Session], clock: FixedClock, policy: Policy | None = None
) -> DrainResult:
    return drain(
        sessions,
        box=BOX,
        clock=clock,
        context=lambda now: SendContext(now=now, public_url=PUBLIC_URL),
        policy=policy or Policy(),
    )


def outbox(sessions: sessionmaker[Session]) -> list[NotificationRecord]:
    with sessions() as session:
        return list(
            session.scalars(select(NotificationRecord).order_by(NotificationRecord.created_at))
        )


def attempts(sessions: sessionmaker[Session]) -> list[NotificationAttempt]:
    with sessions() as session:
        return list(session.scalars(select(NotificationAttempt).order_by(NotificationAttempt.id)))


def makers(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
