"""One drain of the outbox with what a process has: its database, key, clock, AWS sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from harvester.aws.identity import RoleChain, role_chain_from_config
from harvester.inventory.service import get_role
from harvester.notify.deliver import DrainResult, drain
from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery
from harvester.notify.senders import SendContext
from harvester.runtime import Runtime


def send_notifications(rt: Runtime) -> DrainResult:
    """Send what is due (the ``notify`` task, and the end of each embedded cycle)."""

    return drain(rt.sessions, box=rt.box, clock=rt.clock, context=lambda now: context(rt, now))


def context(rt: Runtime, now: datetime) -> SendContext:
    return SendContext(now=now, public_url=rt.settings.public_url, sns_client=_sns(rt))


def test_delivery(spec: DestinationSpec, now: datetime) -> Delivery:
    """A finding that says it is a test, for ``harvester destinations test``."""
    payload = {
        "type": "anomaly",
        "id": "test-" + uuid.uuid4().hex[:12],
        "detector": "notify.test",
        "severity": spec.min_severity.value,
        "score": 0,
        "title": "TEST notification from audit-harvester: no action needed",
        "account_id": spec.accounts[0] if spec.accounts else None,
        "cluster": spec.clusters[0] if spec.clusters else None,
        "principal": "audit-harvester destinations test",
        "first_seen": now.isoformat(),
        "last_seen": now.isoformat(),
        "count": 1,
        "explanation": (
            f"A test of destination {spec.name!r} ({spec.type}), sent by "
            "`harvester destinations test`. Real findings look like this one."
        ),
        "status": "open",
        "dedup_key": "test-" + uuid.uuid4().hex,
        "test": True,
    }
    return Delivery(
        delivery_id=str(uuid.uuid4()),
        destination=spec.name,
        kind="test",
        event="test",
        payload=payload,
    )


def _sns(rt: Runtime) -> Any:
    def client(destination: DestinationSpec) -> Any:
        assert destination.topic_arn is not None
        region = destination.region or destination.topic_arn.split(":")[3]
        return rt.aws.client(_chain(rt, destination.role), "sns", region)

    return client


def _chain(rt: Runtime, role: str | None) -> RoleChain:
    """The inventory role's chain (as a harvest uses it), or the worker's own identity."""
    with rt.sessions() as session:
        config = get_role(session, name=role) if role else None
        return role_chain_from_config(
            config, secret_box=rt.box, default_external_id=rt.settings.external_id
        )
