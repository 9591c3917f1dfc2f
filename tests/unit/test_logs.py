"""Log lines: JSON for pipelines, Celery's per-task lines at the level they deserve."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from harvester.logs import configure_logging, log_context
from harvester.settings import SettingsError, load_settings
from workers.app import TaskLineLevels

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def _json_lines(err: str) -> list[dict[str, object]]:
    lines = [line for line in err.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


@pytest.mark.usefixtures("restore_logging")
def test_json_format_writes_one_object_per_line_with_task_and_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("harvester.pipeline")
    capsys.readouterr()
    log.info("outside any task")
    with log_context(task_id="3f2a-task"), log_context(source_id=7):
        log.warning("object s3://bucket/AWSLogs/x.json.gz:\ncorrupt")
        try:
            raise RuntimeError(f"the secret is {SECRET}")
        except RuntimeError:
            log.exception("failed")
    first, second, third = _json_lines(capsys.readouterr().err)
    assert set(first) == {"time", "level", "logger", "message"}
    assert str(first["time"]).endswith("+00:00")
    assert second == {
        "time": second["time"],
        "level": "WARNING",
        "logger": "harvester.pipeline",
        "message": "object s3://bucket/AWSLogs/x.json.gz:\ncorrupt",
        "task_id": "3f2a-task",
        "source_id": 7,
    }
    assert third["level"] == "ERROR"
    assert "RuntimeError" in str(third["exception"])
    assert SECRET not in json.dumps(third)


def test_the_log_format_setting_is_checked() -> None:
    assert load_settings({"HARVESTER_LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="HARVESTER_LOG_FORMAT"):
        load_settings({"HARVESTER_LOG_FORMAT": "xml"})


def _celery_line(logger: logging.Logger, name: str, result: str = "{}") -> None:
    # As celery.app.trace logs a success: the context as args and as ``data``.
    context = {"id": "abc-123", "name": name, "return_value": result, "args": "(4,)"}
    context["runtime"] = 0.1
    logger.info(
        "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
        context,
        extra={"data": context},
    )


def test_per_batch_lines_go_to_debug_and_degraded_harvests_to_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("celery.app.trace.test")
    logger.addFilter(TaskLineLevels())
    with caplog.at_level(logging.INFO, logger="celery.app.trace.test"):
        _celery_line(logger, "score.batch")
        _celery_line(logger, "harvest.source", "{'source_id': 1, 'status': 'ok'}")
        _celery_line(logger, "harvest.source", "{'source_id': 2, 'status': 'degraded'}")
    levels = [(r.levelname, r.getMessage().split(" succeeded")[0]) for r in caplog.records]
    assert levels == [
        ("INFO", "Task harvest.source[abc-123]"),
        ("WARNING", "Task harvest.source[abc-123]"),
    ]
    assert all(getattr(r, "task_id", None) == "abc-123" for r in caplog.records)
    assert all(getattr(r, "source_id", None) == 4 for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="celery.app.trace.test"):
        _celery_line(logger, "score.batch")
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
