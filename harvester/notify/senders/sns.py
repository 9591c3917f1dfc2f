"""Amazon SNS: the webhook's JSON body published to a topic, with attributes to filter on.

The client comes from the same role and session machinery as harvesting (``SendContext``).
"""

from __future__ import annotations

from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery, Outcome, finding_body
from harvester.notify.senders.base import SendContext
from harvester.notify.senders.text import summary

_THROTTLED = {"Throttling", "ThrottlingException", "ThrottledException"}


def attributes(delivery: Delivery) -> dict[str, dict[str, str]]:
    p = delivery.payload
    values = {
        "kind": delivery.kind,
        "event": delivery.event,
        "severity": str(p.get("severity") or "info"),
        "detector": str(p.get("detector") or "unknown"),
        "account_id": str(p.get("account_id") or ""),
        "cluster": str(p.get("cluster") or ""),
    }
    # SNS refuses empty attribute values.
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items() if v}


def send(destination: DestinationSpec, delivery: Delivery, context: SendContext) -> Outcome:
    if context.sns_client is None:
        return Outcome(ok=False, error="no AWS session for SNS in this process", outcome="failed")
    client: Any = context.sns_client(destination)
    # SNS subjects: ASCII, no line breaks, at most 100 characters.
    subject = summary(delivery).encode("ascii", "replace").decode()[:100]
    try:
        answer = client.publish(
            TopicArn=destination.topic_arn,
            Message=orjson.dumps(finding_body(delivery, context.public_url)).decode(),
            Subject=subject,
            MessageAttributes=attributes(delivery),
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return Outcome(
            ok=False,
            http_status=status,
            error=f"SNS {code}: {exc.response.get('Error', {}).get('Message', '')}",
            outcome="throttled" if code in _THROTTLED else "failed",
        )
    except BotoCoreError as exc:
        return Outcome(ok=False, error=f"SNS: {exc}", outcome="failed")
    return Outcome(
        ok=True, http_status=200, answer=f"MessageId {answer['MessageId']}", outcome="sent"
    )
