from __future__ import annotations

from datetime import UTC, datetime

import pytest

from harvester.sources.discovery import (
    discover_accounts,
    discover_clusters,
    discover_eks_accounts,
    discover_regions,
    explain_location,
    locate_logs,
)
from harvester.sources.layouts import SourceKind
from tests.unit.sources.fakes import ACCOUNT, FakeBucket, ct_key, eks_key

T = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
ORG = "o-a1b2c3d4e5"
OTHER = "210987654321"


def org_key(account: str, region: str, prefix: str = "") -> str:
    return (
        f"{prefix}AWSLogs/{ORG}/{account}/CloudTrail/{region}/2026/01/15/"
        f"{account}_CloudTrail_{region}_20260115T1200Z_a.json.gz"
    )


@pytest.fixture
def bucket() -> FakeBucket:
    b = FakeBucket()
    for key in (
        ct_key(T, region="us-east-1", prefix="logs/"),
        ct_key(T, region="cn-north-1", prefix="logs/"),
        f"logs/AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/01/15/d.json.gz",
        f"logs/AWSLogs/{ACCOUNT}/CloudTrail/not-a-region/x",
        org_key(ACCOUNT, "eu-west-1", "logs/"),
        org_key(OTHER, "us-gov-west-1", "logs/"),
        f"logs/AWSLogs/{ORG}/not-an-account/x",
        "logs/AWSLogs/junk/x",
        eks_key(T, cluster="prod"),
        eks_key(T, cluster="dev_2"),
        f"EKSLogs/{OTHER}/prod/2026/01/15/12/x",
        "EKSLogs/notes.txt",
    ):
        b.put(key, at=T)
    return b


def test_accounts_alone_and_under_an_organization(bucket: FakeBucket) -> None:
    found = discover_accounts(bucket, prefix="logs")
    assert [(a.root, a.org_id, a.account, a.prefix) for a in found] == [
        (f"logs/AWSLogs/{ACCOUNT}/", None, ACCOUNT, "logs/"),
        (f"logs/AWSLogs/{ORG}/{ACCOUNT}/", ORG, ACCOUNT, "logs/"),
        (f"logs/AWSLogs/{ORG}/{OTHER}/", ORG, OTHER, "logs/"),
    ]


def test_accounts_from_a_prefix_that_already_reaches_awslogs(bucket: FakeBucket) -> None:
    assert len(discover_accounts(bucket, prefix=f"logs/AWSLogs/{ACCOUNT}/")) == 3


def test_regions_under_cloudtrail_and_digest(bucket: FakeBucket) -> None:
    assert discover_regions(bucket, root=f"logs/AWSLogs/{ACCOUNT}") == ["cn-north-1", "us-east-1"]
    assert discover_regions(
        bucket, root=f"logs/AWSLogs/{ACCOUNT}/", product="CloudTrail-Digest"
    ) == ["us-east-1"]
    assert discover_regions(bucket, root=f"logs/AWSLogs/{ORG}/{OTHER}/") == ["us-gov-west-1"]


def test_eks_accounts_and_clusters(bucket: FakeBucket) -> None:
    assert discover_eks_accounts(bucket) == [ACCOUNT, OTHER]
    assert discover_clusters(bucket, account_id=ACCOUNT) == ["dev_2", "prod"]
    assert discover_clusters(bucket, account_id="999999999999") == []


def test_locate_logs_finds_both_kinds_breadth_first(bucket: FakeBucket) -> None:
    search = locate_logs(bucket)
    assert [(loc.kind, loc.folder) for loc in search.locations] == [
        (SourceKind.EKS, "EKSLogs/"),
        (SourceKind.CLOUDTRAIL, "logs/AWSLogs/"),
    ]
    assert not search.truncated
    # The root, then "logs/"; AWSLogs/ and EKSLogs/ themselves are not searched.
    assert search.calls == 2


def test_locate_logs_two_levels_deep_but_no_deeper() -> None:
    b = FakeBucket()
    b.put(ct_key(T, prefix="a/b/"), at=T)
    b.put(ct_key(T, prefix="x/y/z/"), at=T)
    search = locate_logs(b, max_depth=2)
    assert [loc.folder for loc in search.locations] == ["a/b/AWSLogs/"]
    assert [loc.folder for loc in locate_logs(b, max_depth=3).locations] == [
        "a/b/AWSLogs/",
        "x/y/z/AWSLogs/",
    ]


def test_locate_logs_stops_at_its_call_budget() -> None:
    b = FakeBucket()
    for i in range(30):
        b.put(f"folder{i:02}/sub/file", at=T)
    b.put(ct_key(T, prefix="folder29/"), at=T)
    search = locate_logs(b, max_calls=10)
    assert search.truncated
    assert search.calls == 10
    assert len(b.calls) == 10
    assert search.locations == []
    message = explain_location("", SourceKind.CLOUDTRAIL, search)
    assert message is not None
    assert "stopped after 10 LIST calls" in message


def test_explain_location(bucket: FakeBucket) -> None:
    search = locate_logs(bucket)
    assert explain_location("logs", SourceKind.CLOUDTRAIL, search) is None
    assert explain_location(f"logs/AWSLogs/{ACCOUNT}/", SourceKind.CLOUDTRAIL, search) is None
    assert explain_location("", SourceKind.CLOUDTRAIL, search) == (
        "logs are under 'logs/AWSLogs/', not 'AWSLogs/': set the prefix to 'logs/'"
    )
    assert explain_location("", SourceKind.EKS, search) is None
    empty = locate_logs(FakeBucket())
    assert explain_location("", SourceKind.CLOUDTRAIL, empty) == (
        "no AWSLogs/ folder was found within 2 folder levels of the bucket root: "
        "is this the right bucket?"
    )
