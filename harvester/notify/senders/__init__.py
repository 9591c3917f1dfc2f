"""One sender per destination type, looked up by type."""

from __future__ import annotations

from harvester.notify.senders import alertmanager, email, pagerduty, slack, sns, webhook
from harvester.notify.senders.base import SendContext, Sender

SENDERS: dict[str, Sender] = {
    "webhook": webhook.send,
    "slack": slack.send,
    "pagerduty": pagerduty.send,
    "alertmanager": alertmanager.send,
    "sns": sns.send,
    "email": email.send,
}

__all__ = ["SENDERS", "SendContext", "Sender"]
