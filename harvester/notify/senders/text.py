"""The words every human-facing sender uses: a one-line summary and where it happened."""

from __future__ import annotations

from typing import Any

from harvester.notify.payloads import Delivery

_EVENT_WORDS = {
    "new": "New",
    "escalated": "Escalated",
    "renotify": "Still open",
    "acknowledged": "Acknowledged",
    "digest": "Digest",
    "test": "TEST",
}


def summary(delivery: Delivery) -> str:
    p = delivery.payload
    severity = str(p.get("severity") or "info").upper()
    word = _EVENT_WORDS.get(delivery.event, delivery.event)
    return f"[{severity}] {word} {delivery.kind}: {p.get('title') or p.get('detector')}"


def where(payload: dict[str, Any]) -> str:
    parts = []
    if payload.get("account_id"):
        parts.append(f"account {payload['account_id']}")
    if payload.get("cluster"):
        parts.append(f"cluster {payload['cluster']}")
    return ", ".join(parts) or "-"
