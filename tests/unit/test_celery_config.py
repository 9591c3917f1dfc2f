"""The Celery configuration: every scheduled task exists and is routed to a queue we consume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harvester.fleet import broker_queues
from harvester.settings import load_settings
from workers.app import TASK_QUEUES, app, celery_config, queue_names


def test_beat_sends_only_registered_tasks_to_declared_queues(tmp_path: Path) -> None:
    import workers.tasks  # noqa: F401  registers the tasks

    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_SCORE_QUEUE": "s"})
    config = celery_config(settings)
    declared = {queue.name for queue in config["task_queues"]}
    (route,) = config["task_routes"]
    scheduled = {entry["task"] for entry in config["beat_schedule"].values()}
    assert scheduled == {"harvest.dispatch", "score.correlate", "notify.send"}
    for name in scheduled | set(TASK_QUEUES):
        assert name in app.tasks, name
        assert route(name)["queue"] in declared, name
    # Correlation runs where scoring runs: a fleet of score workers needs no harvest worker
    # for its incidents.
    assert route("score.correlate") == {"queue": queue_names(settings)["score"]} == {"queue": "s"}


def _worker_argv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> list[str]:
    """What ``harvester worker ARGS`` would exec, with renamed queues in the environment."""
    from harvester.cli.main import main

    monkeypatch.setenv("HARVESTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HARVESTER_HARVEST_QUEUE", "prod-harvest")
    monkeypatch.setenv("HARVESTER_SCORE_QUEUE", "prod-score")
    execs: list[list[str]] = []

    def execve(_path: str, argv: list[str], _env: dict[str, str]) -> None:
        execs.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    with pytest.raises(SystemExit) as exited:
        main(["worker", *args])
    assert exited.value.code == 0
    (argv,) = execs
    return argv


def test_worker_queues_are_logical_names_mapped_to_the_configured_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argv = _worker_argv(monkeypatch, tmp_path)
    consumed = argv[argv.index("-Q") + 1].split(",")
    assert consumed == ["prod-harvest", "prod-score", "notify"]
    # Celery refuses (ImproperlyConfigured) a -Q queue it does not declare.
    declared = {queue.name for queue in celery_config(load_settings())["task_queues"]}
    assert set(consumed) <= declared
    argv = _worker_argv(monkeypatch, tmp_path, "--queues", "score")
    assert argv[argv.index("-Q") + 1] == "prod-score"


def test_an_unknown_queue_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AssertionError):
        _worker_argv(monkeypatch, tmp_path, "--queues", "harvest,scroe")
    err = capsys.readouterr().err
    assert "unknown queue 'scroe'" in err
    assert "score (= prod-score)" in err


def test_broker_queues_accepts_configured_names_and_drops_repeats(tmp_path: Path) -> None:
    settings = load_settings({"HARVESTER_DATA_DIR": str(tmp_path), "HARVESTER_SCORE_QUEUE": "s"})
    assert broker_queues("harvest, s,score", settings) == ["harvest", "s"]
    with pytest.raises(ValueError, match="unknown queue 'celery'"):
        broker_queues("celery", settings)
