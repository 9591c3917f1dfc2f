"""Alertmanager's v2 API: one alert per finding, labelled for the routing teams already run.

An acknowledgement sends the same alert with ``endsAt`` now, which resolves it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from harvester.notify import http
from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery, Outcome, finding_url
from harvester.notify.senders.base import SendContext
from harvester.notify.senders.text import summary

# A finding stays firing this long without a reminder (renotify_after is 24 h by default).
FIRING_FOR = timedelta(days=2)


def alert(delivery: Delivery, context: SendContext) -> dict[str, Any]:
    p = delivery.payload
    labels = {
        "alertname": "HarvesterIncident" if delivery.kind == "incident" else "HarvesterAnomaly",
        "severity": str(p.get("severity") or "info"),
        "detector": str(p.get("detector") or "unknown"),
        "account_id": str(p.get("account_id") or ""),
        "cluster": str(p.get("cluster") or ""),
        "finding_id": str(p.get("id") or delivery.delivery_id),
    }
    ends = context.now if delivery.event == "acknowledged" else context.now + FIRING_FOR
    body: dict[str, Any] = {
        # Alertmanager drops empty label values; leave them out rather than send "".
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {
            "summary": summary(delivery),
            "description": str(p.get("explanation") or ""),
            "principal": str(p.get("principal") or ""),
            "delivery_id": delivery.delivery_id,
        },
        "startsAt": p.get("first_seen") or context.now.isoformat(),
        "endsAt": ends.isoformat(),
    }
    url = finding_url(context.public_url, delivery)
    if url:
        body["generatorURL"] = url
    return body


def send(destination: DestinationSpec, delivery: Delivery, context: SendContext) -> Outcome:
    assert destination.url is not None  # validated
    body = orjson.dumps([alert(delivery, context)])
    return http.post(
        destination.url.rstrip("/") + "/api/v2/alerts",
        body,
        {},
        timeout=destination.timeout.total_seconds(),
        now=context.now,
    )
