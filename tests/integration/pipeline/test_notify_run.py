"""The embedded run with a webhook destination: every anomaly of medium or more reaches it once,
signed; harvesting the same logs again sends nothing new."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from harvester.db.models import Source
from harvester.db.notify_models import NotificationRecord
from harvester.detect import repository as repo
from harvester.detect.model import Severity
from harvester.embedded import run_cycle
from harvester.notify.model import DestinationSpec
from harvester.notify.signing import verify
from harvester.notify.store import upsert_destination
from harvester.pipeline import harvest_objects, score_batch
from harvester.runtime import Runtime
from tests.conftest import FixedClock
from tests.integration.notify.receiver import Receiver
from tests.integration.seeding import ACCOUNTS, BUCKET, REGIONS, Bucket

pytestmark = pytest.mark.integration

SECRET = "pipeline-hook-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def test_a_run_notifies_each_medium_or_worse_anomaly_once_and_a_rerun_nothing(
    runtime: Runtime, bucket: Bucket, now: FixedClock, receiver: Receiver
) -> None:
    with runtime.sessions.begin() as session:
        upsert_destination(
            session,
            DestinationSpec(name="hook", type="webhook", url=receiver.url, secret=SECRET),
            box=runtime.box,
            clock=now,
        )
    keys = [
        bucket.put_trail(account, REGIONS[0], now() - timedelta(minutes=15), records=40)
        for account in ACCOUNTS
    ]
    result = run_cycle(runtime)
    with runtime.sessions() as session:
        wanted = {
            a.id for a in repo.list_anomalies(session, min_severity=Severity.medium, limit=10_000)
        }
        rows = list(session.scalars(select(NotificationRecord)))
    assert wanted, "the generated traffic raised no medium anomaly: nothing was tested"
    assert result.notified == len(rows) >= len(wanted)
    received = Counter(r.json()["id"] for r in receiver.received if r.json()["kind"] == "anomaly")
    assert set(received) == wanted
    assert set(received.values()) == {1}
    for request in receiver.received:
        headers = request.headers
        assert verify(
            SECRET,
            headers["X-Harvester-Timestamp"],
            request.body,
            headers["X-Harvester-Signature-256"],
        )

    # The same objects harvested and scored again: nothing new to send.
    before = len(receiver.received)
    with runtime.sessions() as session:
        sources = {
            s.account.account_id: s.id
            for s in session.scalars(select(Source).where(Source.kind == "cloudtrail"))
        }
    for account, key in zip(ACCOUNTS, keys, strict=True):
        etag = bucket.s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
        harvest_objects(
            runtime,
            source_id=sources[account],
            objects=[(key, etag)],
            emit=lambda body, _n: score_batch(runtime, body=body),
        )
    assert run_cycle(runtime).notified == 0
    assert len(receiver.received) == before
