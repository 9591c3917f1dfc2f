"""The demo: a generated organization in a local moto S3, harvested and scored end to end.

``harvester demo`` starts a moto server on loopback, writes two weeks of an organization's
CloudTrail (an organization trail) and EKS audit logs (Firehose objects) with attacks
injected, applies the matching inventory, runs the embedded pipeline (the same functions the
fleet's tasks call) and prints the sources and what was found. Nothing leaves the machine.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import orjson

from harvester.inventory.spec import AccountSpec, ClusterSpec, InventorySpec, StorageSpec
from harvester.synth.org import Org, OrgRecord, delivery_windows, generate

ORG_ID = "o-demo000001"
TRAIL_BUCKET = "demo-org-trail"
EKS_BUCKET = "demo-eks-audit"


class DemoError(RuntimeError):
    """The demo could not start (moto missing, the server did not answer)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=1):  # noqa: S310  loopback
            return True
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def moto_server(timeout: float = 60.0) -> Iterator[str]:
    """A moto server in its own process on a free loopback port; yields its URL."""
    try:
        import moto.server  # noqa: F401, PLC0415  only to say clearly when it is missing
    except ImportError:
        raise DemoError(
            "the demo needs moto's server: pip install 'moto[server]' (./scripts/demo.sh does)"
        ) from None
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(  # noqa: S603  our own interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DemoError(f"the moto server did not start on {url}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def demo_inventory(org: Org) -> InventorySpec:
    """The organization's accounts behind one organization trail, and its cluster."""
    accounts = []
    for account in org.accounts:
        clusters: tuple[ClusterSpec, ...] = ()
        if account.id == org.cluster_account:
            clusters = (ClusterSpec(org.cluster, org.cluster_region, EKS_BUCKET),)
        accounts.append(
            AccountSpec(
                account_id=account.id,
                name=account.name,
                organization_id=ORG_ID,
                cloudtrail=StorageSpec(TRAIL_BUCKET, "us-east-1", f"AWSLogs/{ORG_ID}/{account.id}"),
                clusters=clusters,
            )
        )
    return InventorySpec(accounts=tuple(accounts))


@dataclass
class Seeded:
    objects: int = 0
    records: int = 0
    attack_records: int = 0
    start: datetime | None = None
    end: datetime | None = None


def _ct_key(account: str, region: str, when: datetime, serial: int) -> str:
    return (
        f"AWSLogs/{ORG_ID}/{account}/CloudTrail/{region}/{when:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%M}Z_{serial:016x}.json.gz"
    )


def _firehose_object(records: list[dict[str, object]], *, org: Org, when: datetime) -> bytes:
    """CloudWatch Logs subscription payloads, each gzipped, concatenated: what Firehose writes."""
    out = io.BytesIO()
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": []}
    out.write(gzip.compress(json.dumps(control).encode()))
    for start in range(0, len(records), 50):
        chunk = records[start : start + 50]
        envelope = {
            "messageType": "DATA_MESSAGE",
            "owner": org.cluster_account,
            "logGroup": f"/aws/eks/{org.cluster}/cluster",
            "logStream": "kube-apiserver-audit-demo0000000000000000000000000001",
            "subscriptionFilters": ["audit-harvester"],
            "logEvents": [
                {
                    "id": str(index),
                    "timestamp": int(when.timestamp() * 1000),
                    "message": orjson.dumps(record).decode(),
                }
                for index, record in enumerate(chunk, start)
            ],
        }
        out.write(gzip.compress(orjson.dumps(envelope)))
    return out.getvalue()


def seed_bucket(
    endpoint_url: str,
    org: Org,
    *,
    start: datetime,
    days: int,
    scale: float,
    every: timedelta = timedelta(minutes=30),
    progress: Callable[[str], None] | None = None,
) -> Seeded:
    """Write the organization's logs into the buckets, as CloudTrail and Firehose deliver them."""
    s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1")
    for bucket in (TRAIL_BUCKET, EKS_BUCKET):
        s3.create_bucket(Bucket=bucket)
    seeded = Seeded(start=start, end=start + timedelta(days=days))
    records = generate(org, start=start, days=days, scale=scale)
    counted = _count(records, seeded)
    for serial, (source, opened, batch) in enumerate(delivery_windows(counted, every=every)):
        kind, account, region, cluster = source
        # Delivered a few minutes after the window closes, as CloudTrail does.
        delivered = opened + every + timedelta(minutes=5)
        if kind == "cloudtrail":
            key = _ct_key(account, region, delivered, serial)
            body = gzip.compress(orjson.dumps({"Records": batch}))
            s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=body)
        else:
            key = (
                f"EKSLogs/{account}/{cluster}/{delivered:%Y/%m/%d/%H}/"
                f"audit-delivery-1-{delivered:%Y-%m-%d-%H-%M-%S}-{serial:08x}"
            )
            s3.put_object(
                Bucket=EKS_BUCKET, Key=key, Body=_firehose_object(batch, org=org, when=delivered)
            )
        seeded.objects += 1
        if progress is not None and seeded.objects % 250 == 0:
            progress(f"seeded {seeded.objects} objects ({seeded.records} records)")
    return seeded


def _count(records: Iterator[OrgRecord], seeded: Seeded) -> Iterator[OrgRecord]:
    for record in records:
        seeded.records += 1
        seeded.attack_records += record.technique is not None
        yield record


def demo_start(now: datetime, days: int) -> datetime:
    """Midnight UTC ``days`` days ago: the data ends about now, so the listing finds it."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def demo_silence(now: datetime, start: datetime, days: int) -> dict[str, timedelta]:
    """Silence expectations for a replay of ``days`` of history from ``start``.

    The generated logs end at midnight, hours before ``now``: measured from ``now``, every
    source would read as silent. The usual expectations are kept, counted from the data's end.
    """
    quiet = max(timedelta(0), now - (start + timedelta(days=days)))
    return {
        "silent_after_cloudtrail": quiet + timedelta(hours=1),
        "silent_after_eks": quiet + timedelta(minutes=30),
    }


def demo_environment(endpoint_url: str) -> dict[str, str]:
    """AWS settings that point every client at the local moto server and nowhere else."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo-secret",  # moto accepts any key
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def apply_environment(env: dict[str, str]) -> None:
    os.environ.update(env)
