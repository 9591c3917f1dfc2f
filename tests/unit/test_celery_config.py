"""The Celery configuration: every scheduled task exists and is routed to a queue we consume."""

from __future__ import annotations

from pathlib import Path

from harvester.settings import load_settings
from workers.app import TASK_QUEUES, app, celery_config, queue_names


def test_beat_sends_only_registered_tasks_to_declared_queues(tmp_path: Path) -> None:
    import workers.tasks  # noqa: F401  registers the tasks

    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_SCORE_QUEUE": "s"})
    config = celery_config(settings)
    declared = {queue.name for queue in config["task_queues"]}
    (route,) = config["task_routes"]
    scheduled = {entry["task"] for entry in config["beat_schedule"].values()}
    assert scheduled == {"harvest.dispatch", "score.correlate"}
    for name in scheduled | set(TASK_QUEUES):
        assert name in app.tasks, name
        assert route(name)["queue"] in declared, name
    # Correlation runs where scoring runs: a fleet of score workers needs no harvest worker
    # for its incidents.
    assert route("score.correlate") == {"queue": queue_names(settings)["score"]} == {"queue": "s"}
