"""The secrets this process holds (at-rest key, decrypted access keys), for log redaction.

Whatever shape a secret has, the redacting filter removes it once it is remembered here; the
shape-based rules of ``harvester.aws.errors.sanitize`` are for secrets the process never held
(an STS response echoed by botocore, a key pasted into an error message).
"""

from __future__ import annotations

import threading

# Shorter strings would redact ordinary words; no key we hold is this short.
MIN_LENGTH = 8
# A bound, so a process that decrypts many keys over its life does not grow without end.
MAX_REMEMBERED = 10_000

_lock = threading.Lock()
_secrets: set[str] = set()


def remember(secret: str | None) -> None:
    """Add ``secret`` to what the redacting filter removes from every log line."""
    if not secret or len(secret) < MIN_LENGTH:
        return
    with _lock:
        if len(_secrets) < MAX_REMEMBERED:
            _secrets.add(secret)


def known() -> tuple[str, ...]:
    """The remembered secrets, longest first (so one containing another goes whole)."""
    with _lock:
        return tuple(sorted(_secrets, key=len, reverse=True))
