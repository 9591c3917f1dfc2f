"""PagerDuty Events API v2: trigger on new, escalated or renotify; resolve on acknowledge.

The dedup key is the anomaly's own, so PagerDuty folds every notification of one finding
into one alert, and the acknowledgement resolves that alert.
"""

from __future__ import annotations

from typing import Any

import orjson

from harvester.notify import http
from harvester.notify.model import PAGERDUTY_URL, DestinationSpec
from harvester.notify.payloads import Delivery, Outcome, finding_url
from harvester.notify.senders.base import SendContext
from harvester.notify.senders.text import summary, where

_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning"}  # else info


def event(delivery: Delivery, routing_key: str, public_url: str | None, now: str) -> dict[str, Any]:
    p = delivery.payload
    dedup_key = str(p.get("dedup_key") or p.get("id") or delivery.delivery_id)
    if delivery.event == "acknowledged":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary(delivery)[:1024],
            "source": where(p),
            "severity": _SEVERITY.get(str(p.get("severity")), "info"),
            "timestamp": p.get("last_seen") or now,
            "component": str(p.get("detector") or "audit-harvester"),
            "group": str(p.get("account_id") or p.get("cluster") or "audit-harvester"),
            "class": delivery.kind,
            "custom_details": {**p, "event": delivery.event, "delivery_id": delivery.delivery_id},
        },
        "client": "audit-harvester",
    }
    url = finding_url(public_url, delivery)
    if url:
        body["links"] = [{"href": url, "text": "Open in audit-harvester"}]
        body["client_url"] = url
    return body


def send(destination: DestinationSpec, delivery: Delivery, context: SendContext) -> Outcome:
    assert destination.secret is not None  # the routing key, validated
    now = context.now.isoformat()
    body = orjson.dumps(event(delivery, destination.secret, context.public_url, now))
    return http.post(
        destination.url or PAGERDUTY_URL,
        body,
        {},
        timeout=destination.timeout.total_seconds(),
        now=context.now,
    )
