"""Slack incoming webhook: a Block Kit message (severity, title, principal, where, why, link)."""

from __future__ import annotations

from typing import Any

import orjson

from harvester.notify import http
from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery, Outcome, finding_url
from harvester.notify.senders.base import SendContext
from harvester.notify.senders.text import summary, where

_EXPLANATION_CHARS = 2900  # a section's text is at most 3000 characters


def message(delivery: Delivery, public_url: str | None) -> dict[str, Any]:
    p = delivery.payload
    fields = [
        {"type": "mrkdwn", "text": f"*Severity*\n{p.get('severity', '-')}"},
        {"type": "mrkdwn", "text": f"*Detector*\n{p.get('detector', '-')}"},
        {"type": "mrkdwn", "text": f"*Principal*\n{p.get('principal') or '-'}"},
        {"type": "mrkdwn", "text": f"*Where*\n{where(p)}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary(delivery)[:150]}},
        {"type": "section", "fields": fields},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": str(p.get("explanation") or "-")[:_EXPLANATION_CHARS],
            },
        },
    ]
    url = finding_url(public_url, delivery)
    if url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url}
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"delivery {delivery.delivery_id}"}],
        }
    )
    return {"text": summary(delivery), "blocks": blocks}


def send(destination: DestinationSpec, delivery: Delivery, context: SendContext) -> Outcome:
    assert destination.secret is not None  # the webhook URL, validated
    body = orjson.dumps(message(delivery, context.public_url))
    return http.post(
        destination.secret, body, {}, timeout=destination.timeout.total_seconds(), now=context.now
    )
