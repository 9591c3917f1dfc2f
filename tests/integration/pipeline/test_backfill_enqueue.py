"""``harvester backfill --enqueue`` sends to the configured harvest queue, grouped as the
pipeline groups objects (issue 12, item 5)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest
import redis
from sqlalchemy.orm import Session

from harvester.crypto import secret_box
from harvester.inventory.plan import apply
from harvester.pipeline import GROUP_MAX_OBJECTS
from harvester.settings import load_settings
from tests.conftest import REDIS_URL, FixedClock
from tests.integration.conftest import Cli
from tests.integration.seeding import ACCOUNTS, REGIONS, Bucket, inventory


@pytest.mark.parametrize("cli", ["sqlite"], indirect=True)
def test_backfill_enqueue_uses_the_configured_queue_and_object_groups(
    cli: Cli, bucket: Bucket, now: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"backfill-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HARVESTER_HARVEST_QUEUE", queue)
    monkeypatch.setenv("HARVESTER_BROKER_URL", REDIS_URL)
    with Session(cli.engine) as session, session.begin():
        apply(session, inventory(), box=secret_box(load_settings()), clock=now)
    start = now() - timedelta(hours=3)
    count = GROUP_MAX_OBJECTS + 3
    keys = {
        bucket.put_trail(ACCOUNTS[0], REGIONS[0], start + timedelta(minutes=5 * i), records=1)
        for i in range(count)
    }
    client = redis.Redis.from_url(REDIS_URL)
    try:
        result = cli(
            "backfill",
            ACCOUNTS[0],
            "--since",
            start.isoformat(),
            "--until",
            now().isoformat(),
            "--enqueue",
        )
        assert result.code == 0, result.err
        assert f"sent {count} object(s) to the harvest queue ({queue})" in result.out
        messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
        assert client.llen("harvest") == 0
    finally:
        client.delete(queue)
        client.close()
    assert {m["headers"]["task"] for m in messages} == {"harvest.object"}
    sent = [key for m in messages for key, _etag in json.loads(_body(m))[0][1]]
    assert sorted(sent) == sorted(keys)
    # The pipeline's grouping: at most GROUP_MAX_OBJECTS small objects per task.
    assert len(messages) == 2


def _body(message: dict[str, object]) -> str:
    body = message["body"]
    assert isinstance(body, str)
    return base64.b64decode(body).decode()
