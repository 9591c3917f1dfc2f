"""The boto3 Lister against the moto server over HTTP (the ``aws`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from sqlalchemy.orm import Session

from harvester.sources.discovery import (
    discover_accounts,
    discover_clusters,
    discover_regions,
    locate_logs,
)
from harvester.sources.layouts import SourceKind, cloudtrail_scope
from harvester.sources.ledger import mark_done, mark_queued
from harvester.sources.listing import ListingPolicy, iter_objects, iter_prefixes, list_new_objects
from harvester.sources.s3lister import S3Lister
from tests.conftest import FixedClock
from tests.unit.sources.fakes import ACCOUNT, add_source, ct_key, eks_key

pytestmark = pytest.mark.integration

BUCKET = "audit-logs"
LOC = cloudtrail_scope("", account_id=ACCOUNT, region="us-east-1")


@pytest.fixture
def s3(aws: str) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def list_calls(s3: Any) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    s3.meta.events.register("before-call.s3.ListObjectsV2", count)
    yield calls
    s3.meta.events.unregister("before-call.s3.ListObjectsV2", count)


def put(s3: Any, key: str, body: bytes = b"x") -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_one_listing_crosses_a_month_boundary_in_key_order(
    s3: Any, list_calls: list[dict[str, Any]]
) -> None:
    times = [
        datetime(2026, 1, 31, 23, 30, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(12)
    ]
    for t in reversed(times):  # put out of order: S3 returns key order regardless
        put(s3, ct_key(t))
    put(s3, ct_key(times[0], region="eu-west-1"))  # another scope: outside the prefix
    lister = S3Lister(s3, BUCKET)
    start = datetime(2026, 1, 31, 23, 50, tzinfo=UTC)
    listed = list(iter_objects(lister, prefix=LOC.prefix, start_after=LOC.start_after(start)))
    assert [o.key for o in listed] == [ct_key(t) for t in times if t >= start]
    assert any("/2026/02/01/" in o.key for o in listed)
    assert len(list_calls) == 1
    first = listed[0]
    assert first.size == 1
    assert not first.etag.startswith('"')
    assert first.last_modified.tzinfo is not None
    assert first.last_modified.utcoffset() == timedelta(0)


def test_start_after_skips_earlier_keys_and_pages_continue(
    s3: Any, list_calls: list[dict[str, Any]]
) -> None:
    times = [
        datetime(2025, 12, 31, 23, 0, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(25)
    ]
    for t in times:
        put(s3, ct_key(t))
    lister = S3Lister(s3, BUCKET)
    start = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)
    listed = list(
        iter_objects(lister, prefix=LOC.prefix, start_after=LOC.start_after(start), page_size=6)
    )
    assert [o.key for o in listed] == [ct_key(t) for t in times if t >= start]
    assert len(list_calls) == 4  # 19 keys in pages of 6
    # before-call sees the serialized request: the query string S3 receives.
    assert list_calls[0]["query_string"]["start-after"] == LOC.start_after(start)
    assert "continuation-token" in list_calls[1]["query_string"]


def test_delimiter_lists_folders(s3: Any) -> None:
    put(s3, ct_key(datetime(2026, 1, 1, tzinfo=UTC)))
    put(s3, ct_key(datetime(2026, 1, 1, tzinfo=UTC), region="us-gov-west-1"))
    put(s3, f"AWSLogs/{ACCOUNT}/CloudTrail/readme.txt")
    lister = S3Lister(s3, BUCKET)
    folders = list(iter_prefixes(lister, prefix=f"AWSLogs/{ACCOUNT}/CloudTrail/"))
    assert folders == [
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/",
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-gov-west-1/",
    ]
    page = lister.list_page(prefix=f"AWSLogs/{ACCOUNT}/CloudTrail/", delimiter="/")
    assert [o.key for o in page.objects] == [f"AWSLogs/{ACCOUNT}/CloudTrail/readme.txt"]


def test_discovery_on_a_real_listing(s3: Any) -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    put(s3, ct_key(t, prefix="org/trails/").replace("AWSLogs/", "AWSLogs/o-a1b2c3d4e5/"))
    put(s3, ct_key(t, prefix="org/trails/", region="eu-west-1"))
    put(s3, eks_key(t, cluster="prod"))
    lister = S3Lister(s3, BUCKET)
    search = locate_logs(lister)
    assert [(loc.kind, loc.prefix) for loc in search.locations] == [
        (SourceKind.EKS, ""),
        (SourceKind.CLOUDTRAIL, "org/trails/"),
    ]
    accounts = discover_accounts(lister, prefix="org/trails/")
    assert sorted((a.org_id or "", a.account) for a in accounts) == [
        ("", ACCOUNT),
        ("o-a1b2c3d4e5", ACCOUNT),
    ]
    plain = next(a for a in accounts if a.org_id is None)
    assert discover_regions(lister, root=plain.root) == ["eu-west-1"]
    assert discover_clusters(lister, account_id=ACCOUNT) == ["prod"]


def test_one_list_call_per_scope_per_cycle(
    s3: Any, list_calls: list[dict[str, Any]], db_session: Session
) -> None:
    clock = FixedClock(datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    source_id = add_source(db_session)
    policy = ListingPolicy(
        lateness_window=timedelta(hours=1), first_harvest_lookback=timedelta(hours=2)
    )
    lister = S3Lister(s3, BUCKET)
    regions = ("us-east-1", "eu-west-1")
    scopes = [cloudtrail_scope("", account_id=ACCOUNT, region=r) for r in regions]

    def deliver(start: datetime, count: int) -> None:
        for region in regions:
            for i in range(count):
                put(s3, ct_key(start + timedelta(minutes=5 * i), region=region))

    def cycle() -> int:
        before = len(list_calls)
        for location in scopes:
            plan = list_new_objects(
                db_session,
                lister,
                source_id=source_id,
                location=location,
                policy=policy,
                clock=clock,
            )
            mark_queued(db_session, source_id=source_id, objects=plan.work, now=clock())
            for item in plan.work:
                mark_done(
                    db_session,
                    source_id=source_id,
                    key=item.key,
                    etag=item.etag,
                    events=1,
                    bytes=1,
                    sha256="0" * 64,
                    now=clock(),
                )
            db_session.commit()
        return len(list_calls) - before

    deliver(datetime(2025, 12, 31, 23, 0, tzinfo=UTC), 18)  # across midnight and the year
    assert cycle() == 2
    clock.advance(timedelta(minutes=5))
    deliver(datetime(2026, 1, 1, 0, 30, tzinfo=UTC), 2)
    assert cycle() == 2
    # A page holds what lies between W - window and the newest key: with pages of 20, a
    # quiet cycle (13 keys since W - 1 h) still takes one call per scope...
    policy = ListingPolicy(lateness_window=timedelta(hours=1), page_size=20)
    clock.advance(timedelta(minutes=5))
    assert cycle() == 2
    # ...and 24 new keys on top of those fill a page: a second one per scope.
    clock.advance(timedelta(hours=2))
    deliver(datetime(2026, 1, 1, 0, 40, tzinfo=UTC), 24)
    assert cycle() == 2 * 2
