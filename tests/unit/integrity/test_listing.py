"""Finding digest folders and digests in a time range, on the in-memory bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from harvester.integrity.service import digest_folders, find_digests
from harvester.integrity.stores import LocalTrailStore
from tests.unit.sources.fakes import FakeBucket

ORG = "o-abcdef1234"
T0 = datetime(2026, 1, 15, 0, 0, 31, tzinfo=UTC)


def digest(
    root: str, account: str, region: str, trail: str, end: datetime, *, backfill: bool = False
) -> str:
    suffix = "_backfill" if backfill else ""
    return (
        f"{root}CloudTrail-Digest/{region}/{end:%Y/%m/%d}/{account}_CloudTrail-Digest_{region}_"
        f"{trail}_us-east-1_{end:%Y%m%dT%H%M%SZ}{suffix}.json.gz"
    )


def bucket_with_two_accounts() -> tuple[FakeBucket, str, str]:
    bucket = FakeBucket()
    org_root = f"AWSLogs/{ORG}/111111111111/"
    own_root = "AWSLogs/222222222222/"
    for hour in range(30):
        end = T0 + timedelta(hours=hour)
        for region in ("us-east-1", "eu-west-1"):
            bucket.put(digest(org_root, "111111111111", region, "org", end), at=end)
        bucket.put(digest(own_root, "222222222222", "us-east-1", "zz-trail", end), at=end)
        bucket.put(digest(own_root, "222222222222", "us-east-1", "aa-trail", end), at=end)
        bucket.put(f"{own_root}CloudTrail/us-east-1/{end:%Y/%m/%d}/x.json.gz", at=end)
    return bucket, org_root, own_root


def test_digest_folders_under_the_bucket_an_account_or_a_region() -> None:
    bucket, org_root, own_root = bucket_with_two_accounts()
    assert sorted(digest_folders(bucket, prefix="")) == sorted(
        [
            f"{org_root}CloudTrail-Digest/eu-west-1/",
            f"{org_root}CloudTrail-Digest/us-east-1/",
            f"{own_root}CloudTrail-Digest/us-east-1/",
        ]
    )
    assert digest_folders(bucket, prefix=own_root) == [f"{own_root}CloudTrail-Digest/us-east-1/"]
    assert digest_folders(bucket, prefix=f"AWSLogs/{ORG}/") == [
        f"{org_root}CloudTrail-Digest/eu-west-1/",
        f"{org_root}CloudTrail-Digest/us-east-1/",
    ]
    inside = f"{org_root}CloudTrail-Digest/eu-west-1/2026/01/"
    assert digest_folders(bucket, prefix=inside) == [inside]


def test_find_digests_takes_the_hours_that_overlap_the_range_across_days_and_trails() -> None:
    bucket, _, own_root = bucket_with_two_accounts()
    folder = f"{own_root}CloudTrail-Digest/us-east-1/"
    since = T0 + timedelta(hours=22)  # 22:00:31 on the 15th
    until = T0 + timedelta(hours=25)  # 01:00:31 on the 16th
    found = find_digests(bucket, folders=[folder], since=since, until=until)
    # Delivered in (since, until + 1h]: ends 23:00:31 to 02:00:31, both trails, oldest first.
    ends = [parsed.time for _, parsed in found]
    assert ends == sorted(ends)
    assert {parsed.trail_name for _, parsed in found} == {"aa-trail", "zz-trail"}
    assert sorted(set(ends)) == [T0 + timedelta(hours=h) for h in (23, 24, 25, 26)]
    assert len(found) == 8
    # The listing starts at the day folder of the range, not at the start of the folder.
    starts = [call["start_after"] for call in bucket.calls if call["prefix"] == folder]
    assert starts == [f"{folder}2026/01/15/"]


def test_backfill_digests_are_found_like_the_others() -> None:
    bucket = FakeBucket()
    root = "AWSLogs/222222222222/"
    late = digest(root, "222222222222", "us-east-1", "t", T0 + timedelta(minutes=40), backfill=True)
    bucket.put(late, at=T0)
    found = find_digests(
        bucket,
        folders=[f"{root}CloudTrail-Digest/us-east-1/"],
        since=T0 - timedelta(hours=1),
        until=T0,
    )
    assert [(key, parsed.backfill) for key, parsed in found] == [(late, True)]


def test_a_local_copy_never_resolves_a_key_outside_itself(tmp_path: Path) -> None:
    """A digest names its log files; ``..`` in such a key must not reach files beyond the copy."""
    copy = tmp_path / "copy"
    inside = copy / "AWSLogs" / "111111111111" / "CloudTrail" / "x.json.gz"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"log")
    (tmp_path / "outside.txt").write_text("not part of the trail")
    store = LocalTrailStore(copy)
    assert store.path("bucket-prefix/AWSLogs/111111111111/CloudTrail/x.json.gz") == inside
    assert store.path("AWSLogs/../../outside.txt") is None
    assert store.path("AWSLogs/111111111111/../../../outside.txt") is None
    assert store.sha256("AWSLogs/../../outside.txt") is None
