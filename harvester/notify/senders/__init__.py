"""One sender per destination type, looked up by type."""

from __future__ import annotations

from harvester.notify.senders import webhook
from harvester.notify.senders.base import SendContext, Sender

SENDERS: dict[str, Sender] = {
    "webhook": webhook.send,
}

__all__ = ["SENDERS", "SendContext", "Sender"]
