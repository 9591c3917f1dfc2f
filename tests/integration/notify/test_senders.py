"""Each sender against a real receiver: Slack and PagerDuty payloads on a local HTTP server,
a real Alertmanager read back through its API, SNS on the moto server read back from an SQS
subscription, email through a local SMTP server."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from aiosmtpd.controller import Controller

from harvester.db.migrate import upgrade
from harvester.detect import repository as repo
from harvester.detect.model import Severity
from harvester.detect.render import anomaly_record
from harvester.notify.model import DestinationSpec
from harvester.notify.payloads import Delivery
from harvester.notify.run import send_notifications
from harvester.notify.senders import SENDERS, SendContext
from harvester.notify.store import upsert_destination
from harvester.runtime import Runtime
from harvester.settings import load_settings
from tests.conftest import FixedClock, http_get, wait_until
from tests.integration.notify.helpers import PUBLIC_URL, stop_logging
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ALERTMANAGER_MISSING = (
    "prometheus-alertmanager is not installed (scripts/test.sh installs the Debian package "
    "prometheus-alertmanager): the Alertmanager destination is not tested against a real one"
)


def _delivery(event: str = "new", **changes: Any) -> Delivery:
    anomaly = stop_logging(severity=Severity.high, cluster="prod", **changes)
    return Delivery(
        delivery_id="0b5c3f5e-1111-4c2a-9d55-6e3f7a0c9a10",
        destination="d",
        kind="anomaly",
        event=event,
        payload=anomaly_record(anomaly),
    )


def _send(spec: DestinationSpec, delivery: Delivery, **context: Any) -> Any:
    return SENDERS[spec.type](
        spec, delivery, SendContext(now=NOW, public_url=PUBLIC_URL, **context)
    )


def test_slack_gets_a_block_kit_message(receiver: Receiver) -> None:
    spec = DestinationSpec(name="s", type="slack", secret=receiver.url + "/services/T/B/X")
    delivery = _delivery()
    outcome = _send(spec, delivery)
    assert outcome.ok, outcome
    (got,) = receiver.received
    assert got.path == "/services/T/B/X"
    body = got.json()
    # Block Kit: a fallback text, then blocks of known types with their required fields.
    assert body["text"].startswith("[HIGH] New anomaly: ")
    types = [b["type"] for b in body["blocks"]]
    assert types == ["header", "section", "section", "actions", "context"]
    header, facts, why, actions, _ = body["blocks"]
    assert header["text"]["type"] == "plain_text"
    assert len(header["text"]["text"]) <= 150
    texts = " ".join(f["text"] for f in facts["fields"])
    assert "high" in texts
    assert "account 111122223333" in texts or "cluster prod" in texts
    assert delivery.payload["principal"] in texts
    assert why["text"]["text"] == delivery.payload["explanation"]
    assert actions["elements"][0]["url"] == f"{PUBLIC_URL}/anomalies/{delivery.payload['id']}"


def test_pagerduty_triggers_then_resolves_by_the_anomaly_dedup_key(receiver: Receiver) -> None:
    spec = DestinationSpec(
        name="p", type="pagerduty", secret="R0UTINGKEY0123456789", url=receiver.url + "/v2/enqueue"
    )
    receiver.answer = lambda _r: (202, {}, b'{"status":"success","dedup_key":"x"}', 0.0)
    new = _delivery()
    assert _send(spec, new).ok
    assert _send(spec, _delivery("acknowledged")).ok
    trigger, resolve = (r.json() for r in receiver.received)
    # Events API v2: routing_key, event_action, dedup_key; payload.summary/source/severity.
    assert trigger["routing_key"] == "R0UTINGKEY0123456789"
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == new.payload["dedup_key"]
    assert trigger["payload"]["severity"] in ("critical", "error", "warning", "info")
    assert trigger["payload"]["severity"] == "error"  # high
    assert trigger["payload"]["summary"]
    assert len(trigger["payload"]["summary"]) <= 1024
    assert trigger["payload"]["source"]
    assert trigger["links"][0]["href"].startswith(PUBLIC_URL)
    assert resolve == {
        "routing_key": "R0UTINGKEY0123456789",
        "event_action": "resolve",
        "dedup_key": new.payload["dedup_key"],
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip(ALERTMANAGER_MISSING)
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
    port, cluster = _free_port(), _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: proc.poll() is not None or _ready(url), timeout=30, what="alertmanager")
        assert proc.poll() is None, "alertmanager exited at start"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return http_get(url + "/-/ready", timeout=1)[0] == 200
    except OSError:
        return False


def test_alertmanager_receives_a_labelled_alert_and_its_resolution(alertmanager: str) -> None:
    spec = DestinationSpec(name="am", type="alertmanager", url=alertmanager)
    delivery = _delivery()
    context = SendContext(now=datetime.now(UTC), public_url=PUBLIC_URL)
    outcome = SENDERS["alertmanager"](spec, delivery, context)
    assert outcome.ok, outcome

    def alerts() -> list[dict[str, Any]]:
        return list(orjson.loads(http_get(alertmanager + "/api/v2/alerts")[1]))

    (alert,) = wait_until(alerts, timeout=10, what="the alert in Alertmanager")
    assert alert["labels"] == {
        "alertname": "HarvesterAnomaly",
        "severity": "high",
        "detector": delivery.payload["detector"],
        "account_id": delivery.payload["account_id"],
        "cluster": "prod",
        "finding_id": delivery.payload["id"],
    }
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"] == f"{PUBLIC_URL}/anomalies/{delivery.payload['id']}"
    # The acknowledgement ends it.
    ack = dataclasses.replace(delivery, event="acknowledged")
    assert SENDERS["alertmanager"](spec, ack, SendContext(now=datetime.now(UTC))).ok
    wait_until(
        lambda: (
            not http_get(alertmanager + "/api/v2/alerts?active=true&silenced=false")[1].strip(
                "[]\n"
            )
        ),
        timeout=10,
        what="the alert resolved",
    )


def test_sns_publishes_through_the_harvesting_session_machinery(
    aws: str, tmp_path: Path, clock: FixedClock
) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="findings")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="findings-copy")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    settings = load_settings(
        {
            "HARVESTER_DATA_DIR": str(tmp_path),
            "HARVESTER_SECRET_KEY": "k",
            "HARVESTER_PUBLIC_URL": PUBLIC_URL,
        }
    )
    rt = Runtime.build(settings, clock=clock, embedded=True)
    try:
        upgrade(rt.engine)
        anomaly = stop_logging()
        with rt.sessions.begin() as session:
            upsert_destination(
                session,
                DestinationSpec(name="topic", type="sns", topic_arn=topic),
                box=rt.box,
                clock=clock,
            )
            repo.save_anomalies(session, [anomaly], clock=clock)
        result = send_notifications(rt)
        assert result.outcomes[("topic", "sent")] == 1, result.outcomes
    finally:
        rt.close()
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    (message,) = messages["Messages"]
    envelope = orjson.loads(message["Body"])
    body = orjson.loads(envelope["Message"])
    assert body["id"] == anomaly.id
    assert (body["kind"], body["event"]) == ("anomaly", "new")
    assert envelope["Subject"].startswith("[")
    attributes = envelope["MessageAttributes"]
    assert attributes["severity"]["Value"] == anomaly.severity.value
    assert attributes["detector"]["Value"] == anomaly.detector


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def test_email_has_a_plain_and_an_html_part() -> None:
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        spec = DestinationSpec(
            name="mail",
            type="email",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,  # the local test server offers no TLS
            email_from="harvester@example.com",
            email_to=("soc@example.com", "oncall@example.com"),
        )
        delivery = _delivery()
        outcome = _send(spec, delivery)
        assert outcome.ok, outcome
        refused = _send(dataclasses.replace(spec, smtp_starttls=True), delivery)
        assert not refused.ok
        assert "STARTTLS" in (refused.error or "")
    finally:
        controller.stop()
    ((sender, recipients, raw),) = inbox.messages
    assert sender == "harvester@example.com"
    assert recipients == ["soc@example.com", "oncall@example.com"]
    mail = message_from_bytes(raw)
    assert mail["X-Harvester-Delivery"] == delivery.delivery_id
    assert mail["Subject"].startswith("[HIGH] New anomaly")
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in mail.walk()
        if not p.is_multipart()
    }
    assert set(parts) == {"text/plain", "text/html"}
    assert delivery.payload["explanation"][:40] in parts["text/plain"]
    assert "<table>" in parts["text/html"]
    assert f"{PUBLIC_URL}/anomalies/{delivery.payload['id']}" in parts["text/html"]
