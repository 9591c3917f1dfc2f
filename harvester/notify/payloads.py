"""What a delivery carries, independent of how a sender formats it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Delivery", "Outcome", "finding_body", "finding_url"]


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    destination: str
    kind: str  # anomaly | incident | digest | test
    event: str  # new | escalated | acknowledged | renotify | digest | test
    payload: dict[str, Any]  # the finding as ``anomalies list --output json`` prints it
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A receiver's answer. ``retry_after`` is its Retry-After, in seconds, when it gave one."""

    ok: bool
    http_status: int | None = None
    answer: str = ""  # the start of the receiver's reply, for people (destinations test)
    error: str | None = None
    retry_after: float | None = None
    outcome: str = ""  # sent | failed | throttled | timeout

    @property
    def label(self) -> str:
        return self.outcome or ("sent" if self.ok else "failed")


def finding_url(public_url: str | None, delivery: Delivery) -> str | None:
    """The finding's console page, when the console's public address is known."""
    if not public_url or delivery.kind not in ("anomaly", "incident"):
        return None
    section = "anomalies" if delivery.kind == "anomaly" else "incidents"
    return f"{public_url.rstrip('/')}/{section}/{delivery.payload.get('id', '')}"


def finding_body(delivery: Delivery, public_url: str | None) -> dict[str, Any]:
    """The webhook body: the finding's fields plus kind, event, url and delivery_id."""
    return {
        **delivery.payload,
        "kind": delivery.kind,
        "event": delivery.event,
        "url": finding_url(public_url, delivery),
        "delivery_id": delivery.delivery_id,
    }
