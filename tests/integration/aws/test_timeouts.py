"""An S3 endpoint that accepts connections and never answers: each timed-out attempt counts."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import boto3
import pytest
from prometheus_client import REGISTRY

from harvester.aws.errors import AwsError
from harvester.aws.s3 import open_object
from harvester.aws.session import ClientSettings
from harvester.metrics import aws_event_hooks


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server on loopback that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


def _timeouts() -> float:
    labels = {"service": "s3", "phase": "read"}
    return REGISTRY.get_sample_value("harvester_aws_timeouts_total", labels) or 0.0


def test_every_timed_out_attempt_is_counted_and_the_call_fails_retryable(
    silent_endpoint: str,
) -> None:
    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x", region_name="us-east-1"
    )
    for event, handler in aws_event_hooks():
        session.events.register(event, handler)
    settings = ClientSettings(read_timeout=0.2, connect_timeout=0.2, max_attempts=1)
    client = session.client("s3", endpoint_url=silent_endpoint, config=settings.to_config())
    before = _timeouts()
    with pytest.raises(AwsError) as caught:
        open_object(client, "bucket", "AWSLogs/key.json.gz")
    assert caught.value.retryable
    # The first try and one retry, each counted as it times out.
    assert _timeouts() - before == 2
