"""What every sender gets and returns: one delivery in, the receiver's answer out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery, Outcome


@dataclass(frozen=True)
class SendContext:
    now: datetime
    public_url: str | None = None
    # (destination) -> a boto3 SNS client, made by the same role/session machinery as harvesting.
    sns_client: Callable[[DestinationSpec], Any] | None = field(default=None, repr=False)


class Sender(Protocol):
    def __call__(
        self, destination: DestinationSpec, delivery: Delivery, context: SendContext
    ) -> Outcome: ...
