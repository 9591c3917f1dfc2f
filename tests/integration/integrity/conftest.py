"""A signed trail in the moto bucket, a source for it, and a harvest that fills the ledger.

``trail`` holds six hours of two regions (log files, and one digest per hour and region,
chained and signed with the test key, signature in the object metadata as CloudTrail puts
it). Tests tamper with it before ``deliver()`` (to the objects in memory) or after (in the
bucket), then verify.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import boto3
import pytest
from sqlalchemy.orm import Session

from harvester.aws.identity import RoleChain, SourceInfo
from harvester.aws.s3 import open_object
from harvester.integrity.keys import FilePublicKeys, PublicKeyProvider
from harvester.integrity.service import IntegrityPolicy, IntegrityRunResult, verify_new_digests
from harvester.parse import ParseStats, parse_object
from harvester.sources.layouts import ObjectKind, ParsedKey, classify
from harvester.sources.ledger import mark_done
from harvester.sources.s3lister import S3Lister
from tests.conftest import FixedClock
from tests.unit.integrity.trail import ACCOUNT, BUCKET, START, Trail, public_keys_json, signing_key
from tests.unit.sources.fakes import add_source

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGIONS = ("us-east-1", "eu-west-1")
HOURS = 6
# An hour after the last digest: everything delivered, nothing pending for long.
AFTER = START + timedelta(hours=HOURS + 1)


@pytest.fixture
def s3(aws: str) -> S3Client:
    client: S3Client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def trail() -> Trail:
    t = Trail()
    t.hours(REGIONS, count=HOURS)
    return t


def harvest(
    session: Session, s3: S3Client, source_id: int, keys: Iterable[str], now: datetime
) -> int:
    """What the pipeline's worker does per log object: stream, parse, hash, mark done."""
    done = 0
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        etag = head["ETag"].strip('"')
        stats = ParseStats()
        with io.BufferedReader(open_object(s3, BUCKET, key, etag=etag)) as body:
            for _ in parse_object(body, kind="cloudtrail", bucket=BUCKET, key=key, stats=stats):
                pass
        assert stats.sha256 is not None
        mark_done(session, source_id=source_id, key=key, etag=etag, events=stats.events,
                  bytes=stats.compressed_bytes, sha256=stats.sha256, now=now)  # fmt: skip
        done += 1
    return done


def log_keys(trail: Trail) -> list[str]:
    found = []
    for key in trail.objects:
        parsed = classify(key)
        if isinstance(parsed, ParsedKey) and parsed.kind is ObjectKind.LOG:
            found.append(key)
    return sorted(found)


@dataclass
class Harness:
    session: Session
    s3: S3Client
    trail: Trail
    source_id: int
    clock: FixedClock
    keys: PublicKeyProvider
    policy: IntegrityPolicy

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(
            kind="cloudtrail", account_id=ACCOUNT, bucket=BUCKET, region="us-east-1",
            prefix=self.trail.prefix, chain=RoleChain(),
        )  # fmt: skip

    def deliver(self, *, harvest_logs: bool = True, skip: Iterable[str] = ()) -> None:
        """Put the trail in the bucket; harvest its log files (all but ``skip``)."""
        self.trail.put_all(self.s3)
        if harvest_logs:
            self.harvest([key for key in log_keys(self.trail) if key not in set(skip)])

    def harvest(self, keys: Iterable[str]) -> int:
        return harvest(self.session, self.s3, self.source_id, keys, self.clock())

    def verify(self, keys: PublicKeyProvider | None = None) -> IntegrityRunResult:
        return verify_new_digests(
            self.session,
            lister=S3Lister(self.s3, BUCKET),
            s3=self.s3,
            source_id=self.source_id,
            info=self.info,
            clock=self.clock,
            key_provider=keys or self.keys,
            policy=self.policy,
        )


@pytest.fixture
def h(db_session: Session, s3: S3Client, trail: Trail) -> Harness:
    return Harness(
        session=db_session,
        s3=s3,
        trail=trail,
        source_id=add_source(db_session),
        clock=FixedClock(AFTER),
        keys=FilePublicKeys.from_json(public_keys_json(signing_key())),
        policy=IntegrityPolicy(),
    )
