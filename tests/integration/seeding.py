"""A seeded organization bucket in the moto server, and an inventory pointing at it.

Shared by the pipeline tests (one process) and the fleet tests (real workers)."""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import boto3
import pytest

import harvester.db.anomaly_models  # noqa: F401  all tables in the metadata
from harvester.inventory.spec import AccountSpec, ClusterSpec, InventorySpec, StorageSpec
from harvester.parse import parse_object
from harvester.synth.logs import cloudtrail_record, write_eks_firehose_object
from tests.conftest import FixedClock

ORG = "o-pipeline01"
ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1")
CLUSTER = "payments"
BUCKET = "org-trail"
EKS_BUCKET = "eks-audit"


def ct_key(account: str, region: str, when: datetime, unique: str) -> str:
    return (
        f"AWSLogs/{ORG}/{account}/CloudTrail/{region}/{when:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%M}Z_{unique}.json.gz"
    )


@dataclass
class Seeded:
    """What the test put in the bucket: every event id, per key."""

    event_ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def all_ids(self) -> set[str]:
        return {i for ids in self.event_ids.values() for i in ids}


class Bucket:
    def __init__(self) -> None:
        import random

        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.rng = random.Random(7)
        self.seeded = Seeded()
        self.serial = 0

    def put_trail(self, account: str, region: str, when: datetime, records: int = 5) -> str:
        self.serial += 1
        body = [
            cloudtrail_record(
                self.rng, account_id=account, region=region, when=when + timedelta(seconds=i)
            )
            for i in range(records)
        ]
        key = ct_key(account, region, when, f"{self.serial:016x}")
        self.s3.put_object(
            Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps({"Records": body}).encode())
        )
        self.seeded.event_ids[key] = [r["eventID"] for r in body]
        return key

    def put_raw(self, key: str, data: bytes, bucket: str = BUCKET) -> None:
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)

    def put_eks(self, account: str, when: datetime, *, seed: int) -> str:
        buffer = io.BytesIO()
        summary = write_eks_firehose_object(
            buffer, target_bytes=40_000, seed=seed, cluster=CLUSTER, account_id=account, start=when
        )
        key = f"EKSLogs/{account}/{CLUSTER}/{when:%Y/%m/%d/%H}/audit-stream-1-{when:%Y-%m-%d-%H-%M-%S}-{seed:08d}"
        self.s3.put_object(Bucket=EKS_BUCKET, Key=key, Body=buffer.getvalue())
        buffer.seek(0)
        events = parse_object(
            buffer, kind="eks", bucket=EKS_BUCKET, key=key, cluster=CLUSTER, account=account
        )
        self.seeded.event_ids[key] = [e.id for e in events]
        assert len(self.seeded.event_ids[key]) == summary.records > 0
        return key


@pytest.fixture
def bucket(aws: str) -> Bucket:
    b = Bucket()
    b.s3.create_bucket(Bucket=BUCKET)
    b.s3.create_bucket(Bucket=EKS_BUCKET)
    return b


def inventory() -> InventorySpec:
    accounts = []
    for index, account in enumerate(ACCOUNTS):
        accounts.append(
            AccountSpec(
                account_id=account,
                name=f"acct-{index}",
                organization_id=ORG,
                cloudtrail=StorageSpec(BUCKET, "us-east-1", f"AWSLogs/{ORG}/{account}"),
                clusters=(ClusterSpec(CLUSTER, "us-east-1", EKS_BUCKET),) if index == 0 else (),
            )
        )
    return InventorySpec(accounts=tuple(accounts))


@pytest.fixture
def now() -> FixedClock:
    # moto stamps LastModified with the real time; the listing works from key times, so the
    # clock is pinned just after "now" to keep the test independent of the time of day.
    return FixedClock(datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1))
