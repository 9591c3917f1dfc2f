"""Generic webhook: the finding as JSON, signed with the destination's secret when it has one."""

from __future__ import annotations

import orjson

from harvester.notify import http
from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery, Outcome, finding_body
from harvester.notify.senders.base import SendContext
from harvester.notify.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature


def send(destination: DestinationSpec, delivery: Delivery, context: SendContext) -> Outcome:
    assert destination.url is not None  # validated
    body = orjson.dumps(finding_body(delivery, context.public_url))
    timestamp = str(int(context.now.timestamp()))
    headers = {DELIVERY_HEADER: delivery.delivery_id, TIMESTAMP_HEADER: timestamp}
    if destination.secret:
        headers[SIGNATURE_HEADER] = signature(destination.secret, timestamp, body)
    return http.post(
        destination.url,
        body,
        headers,
        timeout=destination.timeout.total_seconds(),
        now=context.now,
    )
