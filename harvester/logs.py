"""Logging for every entry point: one format, credentials redacted on every handler."""

from __future__ import annotations

import logging
import sys

from harvester.aws.errors import RedactingFilter

_NOISY = ("botocore", "boto3", "urllib3", "s3transfer", "alembic")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at setup."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Log to standard error with the redacting filter; keep AWS libraries at WARNING.

    botocore logs request headers and STS responses at DEBUG: the filter sanitizes whatever
    reaches the handler even when an operator turns DEBUG on.
    """
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
