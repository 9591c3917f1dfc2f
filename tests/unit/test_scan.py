"""Offline scan of an ``aws s3 sync`` tree: classification, summaries, bad objects."""

from __future__ import annotations

import gzip
import shutil
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harvester.events import Event
from harvester.parse import Readable
from harvester.scan import SourceObject, classify_key, local_objects, scan, sniff_kind
from harvester.synth import write_cloudtrail_object, write_eks_firehose_object

ACCOUNT = "111122223333"
OTHER = "444455556666"


@pytest.mark.parametrize(
    ("key", "kind", "account", "region", "cluster"),
    [
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/03/04/{ACCOUNT}_CloudTrail_us-east-1_"
            "20240304T0500Z_abc.json.gz",
            "cloudtrail",
            ACCOUNT,
            "us-east-1",
            None,
        ),
        (
            f"prefix/AWSLogs/o-abcdef1234/{ACCOUNT}/CloudTrail/eu-west-1/2024/03/04/x.json.gz",
            "cloudtrail",
            ACCOUNT,
            "eu-west-1",
            None,
        ),
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/04/d.json.gz",
            "cloudtrail_digest",
            ACCOUNT,
            "us-east-1",
            None,
        ),
        (
            f"p/AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2024/03/04/{ACCOUNT}_CloudTrail-Digest_"
            "us-east-1_org-trail_us-east-1_20240304T050000Z.json.gz",
            "cloudtrail_digest",
            ACCOUNT,
            "us-east-1",
            None,
        ),
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/2024/03/04/i.json.gz",
            "cloudtrail_insight",
            ACCOUNT,
            "us-east-1",
            None,
        ),
        (
            f"EKSLogs/{ACCOUNT}/prod-eks/2024/03/04/05/eks-audit-1-2024-03-04",
            "eks",
            ACCOUNT,
            None,
            "prod-eks",
        ),
        (
            f"/tmp/sync/{ACCOUNT}_CloudTrail_us-west-2_20240304T0500Z_abc.json.gz",
            "cloudtrail",
            ACCOUNT,
            "us-west-2",
            None,
        ),
        (
            f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2024/03/04/f.log.gz",
            "unknown",
            None,
            None,
            None,
        ),
        ("notes.txt", "unknown", None, None, None),
    ],
)
def test_classify_key(
    key: str, kind: str, account: str | None, region: str | None, cluster: str | None
) -> None:
    info = classify_key(key)
    assert (info.kind, info.account, info.region, info.cluster) == (kind, account, region, cluster)


def ct_key(root: Path, account: str, region: str, name: str) -> Path:
    path = root / "AWSLogs" / account / "CloudTrail" / region / "2024" / "03" / "04" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "sync"
    write_cloudtrail_object(
        ct_key(root, ACCOUNT, "us-east-1", "a.json.gz"),
        target_bytes=200_000,
        seed=1,
        account_id=ACCOUNT,
        region="us-east-1",
    )
    write_cloudtrail_object(
        ct_key(root, ACCOUNT, "us-east-1", "b.json"),
        target_bytes=100_000,
        seed=2,
        account_id=ACCOUNT,
        region="us-east-1",
        compress=False,
    )
    write_cloudtrail_object(
        ct_key(root, OTHER, "eu-west-1", "c.json.gz"),
        target_bytes=100_000,
        seed=3,
        account_id=OTHER,
        region="eu-west-1",
        start=datetime(2024, 3, 5, tzinfo=UTC),
    )
    digest = root / "AWSLogs" / ACCOUNT / "CloudTrail-Digest" / "us-east-1" / "2024" / "d.json.gz"
    digest.parent.mkdir(parents=True)
    digest.write_bytes(gzip.compress(b'{"digestStartTime": "x", "logFiles": []}'))
    eks = root / "EKSLogs" / ACCOUNT / "prod-eks" / "2024" / "03" / "04" / "05" / "eks-1"
    eks.parent.mkdir(parents=True)
    write_eks_firehose_object(
        eks, target_bytes=150_000, seed=4, cluster="prod-eks", account_id=ACCOUNT
    )
    broken = ct_key(root, ACCOUNT, "us-east-1", "broken.json.gz")
    data = (ct_key(root, ACCOUNT, "us-east-1", "a.json.gz")).read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    (root / ".DS_Store").write_bytes(b"\x00")
    (root / "README.txt").write_text("not a log")
    return root


def test_scan_a_synced_tree(tree: Path) -> None:
    seen = []
    summary = scan(local_objects([tree]), on_event=seen.append)
    assert summary.events == len(seen) > 0
    assert summary.objects == 5  # three CloudTrail, one EKS, one broken
    assert summary.skipped == {"cloudtrail_digest": 1, "unknown": 1}
    assert set(summary.cloudtrail) == {(ACCOUNT, "us-east-1"), (OTHER, "eu-west-1")}
    assert set(summary.clusters) == {(ACCOUNT, "prod-eks")}

    home = summary.cloudtrail[(ACCOUNT, "us-east-1")]
    assert home.objects == 3
    assert home.distinct_principals > 3
    assert home.first is not None
    assert home.last is not None
    assert home.first <= home.last
    assert home.first == datetime(2024, 3, 4, 5, tzinfo=UTC)
    assert [e.reason for e in home.errors] == ["truncated"]
    error = summary.errors[0]
    assert error.key.endswith("broken.json.gz")
    assert error.events > 0  # what was read before the fault still counted
    away = summary.cloudtrail[(OTHER, "eu-west-1")]
    assert away.first is not None
    assert away.first.date() == datetime(2024, 3, 5, tzinfo=UTC).date()
    assert not away.errors

    cluster = summary.clusters[(ACCOUNT, "prod-eks")]
    assert cluster.events == sum(1 for e in seen if e.source == "eks")
    assert summary.uncompressed_bytes > summary.compressed_bytes > 0


def test_a_single_file_outside_its_tree(tree: Path, tmp_path: Path) -> None:
    source = next(tree.rglob("a.json.gz"))
    loose = tmp_path / f"{ACCOUNT}_CloudTrail_us-east-1_20240304T0500Z_x.json.gz"
    shutil.copy(source, loose)
    summary = scan(local_objects([loose]))
    assert summary.objects == 1
    assert summary.events > 0
    assert not summary.errors


def test_an_unreadable_object_is_recorded_and_the_scan_goes_on(tree: Path) -> None:
    def failing() -> AbstractContextManager[Readable]:
        raise PermissionError("denied")

    bad_key = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/03/04/locked.json.gz"
    objects = [SourceObject(bad_key, failing, bucket="bkt"), *local_objects([tree])]
    summary = scan(objects)
    assert summary.errors[0].reason == "unreadable"
    assert summary.errors[0].bucket == "bkt"
    assert summary.events > 0


AUDIT_EVENT = (
    b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-%d",'
    b'"stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list",'
    b'"user":{"username":"alice"},"sourceIPs":["10.0.0.1"],'
    b'"requestReceivedTimestamp":"2024-03-04T05:00:00.000000Z"}\n'
)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b'{"Records": [{"eventVersion": "1.08"}', "cloudtrail"),
        (b'\n  {\n  "Records" : [', "cloudtrail"),
        (b'{"eventVersion": "1.0", "Records": []}', "cloudtrail"),
        (b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/x/cluster"', "eks"),
        (AUDIT_EVENT % 1, "eks"),
        (b'{"digestStartTime": "x", "logFiles": []}', "unknown"),
        (b'{"kind": "Pod", "apiVersion": "v1"}', "unknown"),
        (b"hello, world", "unknown"),
        (b"", "unknown"),
    ],
)
def test_sniff_kind(head: bytes, kind: str) -> None:
    assert sniff_kind(head) == kind


def test_named_files_are_read_by_their_content(tree: Path, tmp_path: Path) -> None:
    # Downloaded objects renamed: the name says nothing, the content says what they are.
    trail = tmp_path / "trail.json.gz"
    shutil.copy(next(tree.rglob("a.json.gz")), trail)
    firehose = tmp_path / "download.bin"
    shutil.copy(next(tree.rglob("eks-1")), firehose)
    audit = tmp_path / "audit.log"
    audit.write_bytes(b"".join(AUDIT_EVENT % i for i in range(3)))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a log")
    seen: list[Event] = []
    summary = scan(local_objects([trail, firehose, audit, notes]), on_event=seen.append)
    assert summary.objects == 3
    assert {e.raw.key for e in seen} == {str(trail), str(firehose), str(audit)}
    assert sum(1 for e in seen if e.raw.key == str(audit)) == 3
    assert {e.source for e in seen if e.raw.key == str(firehose)} == {"eks"}
    assert [(e.key, e.reason) for e in summary.errors] == [(str(notes), "unrecognised")]


def test_unrecognised_files_in_a_folder_are_listed(tree: Path) -> None:
    summary = scan(local_objects([tree]))
    assert summary.unrecognised == [str(tree / "README.txt")]
    assert summary.skipped["unknown"] == 1
    assert not [e for e in summary.errors if e.reason == "unrecognised"]
