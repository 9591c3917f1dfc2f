"""Logging for every entry point: one format, credentials redacted on every handler.

``HARVESTER_LOG_FORMAT=json`` writes one JSON object per line (time, level, logger, message,
task id and source id where known, exception) for log pipelines; ``text`` (the default) is
for people. The task and source ids come from :func:`log_context`, which the task wrapper
and the harvest functions enter, or from a record's own ``task_id``/``source_id`` attribute.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from harvester.aws.errors import RedactingFilter

_NOISY = ("botocore", "boto3", "urllib3", "s3transfer", "alembic")
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("harvester_log_context", default=None)
_CONTEXT_FIELDS = ("task_id", "source_id")


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every record logged inside carries these fields (``task_id``, ``source_id``)."""
    known = {key: value for key, value in fields.items() if value is not None}
    token = _CONTEXT.set({**(_CONTEXT.get() or {}), **known})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _CONTEXT.get() or {}
        for name in _CONTEXT_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value is not None:
                payload[name] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # the redacting filter leaves the sanitized traceback here
            payload["exception"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at setup."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to standard error with the redacting filter; keep AWS libraries at WARNING.

    botocore logs request headers and STS responses at DEBUG: the filter sanitizes whatever
    reaches the handler even when an operator turns DEBUG on. ``fmt`` is "text" or "json".
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use text or json")
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_harvester", False):
            root.removeHandler(existing)
    handler._harvester = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # Handlers installed by others (Celery's, pytest's) get the filter too.
    for existing in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in existing.filters):
            existing.addFilter(RedactingFilter())
