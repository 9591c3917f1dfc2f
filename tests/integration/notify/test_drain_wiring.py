"""The drain's wiring: the embedded cycle sends at its end, the notify task is on its own queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvester.db.migrate import upgrade
from harvester.detect import repository as repo
from harvester.embedded import run_cycle
from harvester.notify.model import DestinationSpec
from harvester.notify.store import upsert_destination
from harvester.runtime import Runtime
from harvester.settings import load_settings
from tests.conftest import FixedClock
from tests.integration.notify.helpers import stop_logging
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration


def test_an_embedded_cycle_sends_what_it_stored(
    tmp_path: Path, clock: FixedClock, receiver: Receiver
) -> None:
    settings = load_settings(
        {
            "HARVESTER_DATA_DIR": str(tmp_path),
            "HARVESTER_SECRET_KEY": "test-key",
            "HARVESTER_PUBLIC_URL": "https://console.example.com/",
        }
    )
    rt = Runtime.build(settings, clock=clock, embedded=True)
    try:
        upgrade(rt.engine)
        with rt.sessions.begin() as session:
            upsert_destination(
                session,
                DestinationSpec(name="hook", type="webhook", url=receiver.url),
                box=rt.box,
                clock=clock,
            )
            anomaly = stop_logging()
            repo.save_anomalies(session, [anomaly], clock=clock)
        result = run_cycle(rt)
        assert result.notified == 1
        (got,) = receiver.received
        assert got.json()["url"] == f"https://console.example.com/anomalies/{anomaly.id}"
        assert run_cycle(rt).notified == 0  # sent once
    finally:
        rt.close()


def test_the_notify_task_runs_on_its_own_queue_every_dispatch_interval(tmp_path: Path) -> None:
    import workers.tasks  # noqa: F401  registers the tasks
    from workers.app import celery_config

    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_NOTIFY_QUEUE": "n"})
    config = celery_config(settings)
    (route,) = config["task_routes"]
    assert route("notify.send") == {"queue": "n"}
    assert route("score.batch") == {"queue": settings.score_queue}
    entry = config["beat_schedule"]["notify"]
    assert entry["task"] == "notify.send"
    assert entry["schedule"] == settings.dispatch_interval.total_seconds()
