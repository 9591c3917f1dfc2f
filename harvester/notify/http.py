"""One HTTP POST with a timeout, its answer turned into an ``Outcome`` (stdlib only)."""

from __future__ import annotations

import email.utils
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime

from harvester.notify.payloads import Outcome

_ANSWER_CHARS = 500


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, now: datetime
) -> Outcome:
    request = urllib.request.Request(  # noqa: S310  the scheme is checked by DestinationSpec
        url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = response.read(_ANSWER_CHARS).decode(errors="replace")
            return Outcome(ok=True, http_status=response.status, answer=answer, outcome="sent")
    except urllib.error.HTTPError as exc:
        with exc:
            answer = exc.read(_ANSWER_CHARS).decode(errors="replace")
        throttled = exc.code in {429, 503}
        return Outcome(
            ok=False,
            http_status=exc.code,
            answer=answer,
            error=f"HTTP {exc.code} {exc.reason}",
            retry_after=retry_after_seconds(exc.headers.get("Retry-After"), now),
            outcome="throttled" if throttled else "failed",
        )
    except TimeoutError:
        return Outcome(ok=False, error=f"no answer within {timeout:g}s", outcome="timeout")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Outcome(ok=False, error=f"no answer within {timeout:g}s", outcome="timeout")
        return Outcome(ok=False, error=f"cannot reach the receiver: {exc.reason}", outcome="failed")
    except OSError as exc:
        return Outcome(ok=False, error=f"connection failed: {exc}", outcome="failed")
