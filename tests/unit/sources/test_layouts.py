from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from harvester.sources.layouts import (
    ObjectKind,
    ParsedKey,
    ScopeLocation,
    Skipped,
    SkipReason,
    SourceKind,
    classify,
    cloudtrail_root,
    cloudtrail_scope,
    custom_prefix,
    eks_root,
    eks_scope,
    scope_location,
)
from tests.unit.sources.fakes import ACCOUNT, ct_key, eks_key

ORG = "o-a1b2c3d4e5"


def parsed(key: str, size: int | None = None) -> ParsedKey:
    result = classify(key, size)
    assert isinstance(result, ParsedKey), result
    return result


def skipped(key: str, size: int | None = None) -> Skipped:
    result = classify(key, size)
    assert isinstance(result, Skipped), result
    return result


# --- CloudTrail keys ------------------------------------------------------------------------


def test_account_trail_log_key() -> None:
    key = (
        f"AWSLogs/{ACCOUNT}/CloudTrail/eu-west-1/2026/01/15/"
        f"{ACCOUNT}_CloudTrail_eu-west-1_20260115T1205Z_Xy9pQr2sT4uV6wZ8.json.gz"
    )
    p = parsed(key, 2048)
    assert p.kind is ObjectKind.LOG
    assert (p.prefix, p.org_id, p.account, p.region, p.cluster) == (
        "",
        None,
        ACCOUNT,
        "eu-west-1",
        None,
    )
    assert p.time == datetime(2026, 1, 15, 12, 5, tzinfo=UTC)
    assert p.scope == "eu-west-1"


@pytest.mark.parametrize("prefix", ["logs/", "a/b/c/", "AWSLogs-archive/", "x/AWSLogs/"])
def test_custom_prefix_in_front_of_awslogs(prefix: str) -> None:
    p = parsed(ct_key(datetime(2026, 1, 15, 12, 5, tzinfo=UTC), prefix=prefix))
    assert p.prefix == prefix
    assert p.account == ACCOUNT


def test_organization_trail_key() -> None:
    key = (
        f"trails/AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/us-east-2/2025/12/31/"
        f"{ACCOUNT}_CloudTrail_us-east-2_20251231T2355Z_abc.json.gz"
    )
    p = parsed(key)
    assert (p.prefix, p.org_id, p.account, p.region) == ("trails/", ORG, ACCOUNT, "us-east-2")
    assert p.time == datetime(2025, 12, 31, 23, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    "region", ["us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1", "ap-southeast-7"]
)
def test_govcloud_china_and_new_regions(region: str) -> None:
    p = parsed(ct_key(datetime(2026, 3, 1, tzinfo=UTC), region=region))
    assert p.region == region


def test_digest_key_is_recognised_with_trail_name() -> None:
    key = (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/01/15/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_org_trail-1.main_us-east-1_20260115T130533Z.json.gz"
    )
    p = parsed(key)
    assert p.kind is ObjectKind.DIGEST
    assert p.trail_name == "org_trail-1.main"
    assert p.backfill is False
    assert p.time == datetime(2026, 1, 15, 13, 5, 33, tzinfo=UTC)


def test_backfill_digest_key() -> None:
    key = (
        f"AWSLogs/{ORG}/{ACCOUNT}/CloudTrail-Digest/cn-north-1/2026/01/15/"
        f"{ACCOUNT}_CloudTrail-Digest_cn-north-1_t_cn-north-1_20260115T130533Z_backfill.json.gz"
    )
    p = parsed(key)
    assert (p.kind, p.backfill, p.org_id, p.trail_name) == (ObjectKind.DIGEST, True, ORG, "t")


def test_insight_key() -> None:
    key = (
        f"AWSLogs/{ACCOUNT}/CloudTrail-Insight/us-east-1/2026/01/15/"
        f"{ACCOUNT}_CloudTrail-Insight_us-east-1_20260115T1210Z_Zz9.json.gz"
    )
    p = parsed(key)
    assert p.kind is ObjectKind.INSIGHT
    assert p.time == datetime(2026, 1, 15, 12, 10, tzinfo=UTC)


# --- EKS keys -------------------------------------------------------------------------------


def test_eks_key_refined_by_firehose_stamp() -> None:
    p = parsed(eks_key(datetime(2026, 1, 15, 12, 5, 33, tzinfo=UTC), cluster="prod-eu_1"))
    assert (p.kind, p.account, p.cluster, p.region) == (ObjectKind.EKS, ACCOUNT, "prod-eu_1", None)
    assert p.time == datetime(2026, 1, 15, 12, 5, 33, tzinfo=UTC)
    assert p.folder_time == datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert p.scope == ""


def test_eks_key_without_a_firehose_stamp_uses_the_hour_folder() -> None:
    p = parsed(f"EKSLogs/{ACCOUNT}/prod/2026/01/15/07/custom-object-name.gz")
    assert p.time == datetime(2026, 1, 15, 7, tzinfo=UTC)


def test_eks_stamp_outside_its_hour_folder_is_not_trusted() -> None:
    name = "stream-1-2026-01-15-09-05-33-2f1c1a4e-9a2b-4c3d-8e5f-0123456789ab"
    p = parsed(f"EKSLogs/{ACCOUNT}/prod/2026/01/15/07/{name}")
    assert p.time == datetime(2026, 1, 15, 7, tzinfo=UTC)


def test_eks_key_under_a_custom_prefix() -> None:
    p = parsed(f"firehose/EKSLogs/{ACCOUNT}/prod/2026/01/15/07/x")
    assert p.prefix == "firehose/"


# --- skipped --------------------------------------------------------------------------------


def test_zero_byte_object_is_skipped() -> None:
    s = skipped(ct_key(datetime(2026, 1, 15, tzinfo=UTC)), 0)
    assert s.reason is SkipReason.EMPTY


@pytest.mark.parametrize(
    "key",
    [f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/15/", "AWSLogs/", f"EKSLogs/{ACCOUNT}/p/"],
)
def test_folder_marker_is_skipped_whatever_its_size(key: str) -> None:
    assert skipped(key, 0).reason is SkipReason.FOLDER_MARKER
    assert skipped(key).reason is SkipReason.FOLDER_MARKER


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        ("random/file.txt", "neither"),
        (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/13/01/x.json.gz", "calendar date"),
        (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/15/notes.json.gz", "naming"),
        # The file name's account differs from the folder's.
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/15/"
            "999999999999_CloudTrail_us-east-1_20260115T1205Z_a.json.gz",
            "differs from its folders",
        ),
        # The stamp is in another day than its folder.
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/15/"
            f"{ACCOUNT}_CloudTrail_us-east-1_20260116T0005Z_a.json.gz",
            "date folder",
        ),
        (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/15/"
            f"{ACCOUNT}_CloudTrail_us-east-1_20260115T2505Z_a.json.gz",
            "not a valid time",
        ),
        ("AWSLogs/12345/CloudTrail/us-east-1/2026/01/15/x.json.gz", "neither"),
        (f"EKSLogs/{ACCOUNT}/prod/2026/01/15/24/x", "calendar time"),
        (f"EKSLogs/{ACCOUNT}/prod/2026/01/15/x", "neither"),
        (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/01/15/sub/x.json.gz", "neither"),
    ],
)
def test_garbage_is_unrecognised_with_a_reason(key: str, detail: str) -> None:
    s = skipped(key, 10)
    assert s.reason is SkipReason.UNRECOGNISED
    assert detail in s.detail


# --- roots, scopes, StartAfter --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "org", "root"),
    [
        ("", None, f"AWSLogs/{ACCOUNT}/"),
        ("logs", None, f"logs/AWSLogs/{ACCOUNT}/"),
        ("/logs/", None, f"logs/AWSLogs/{ACCOUNT}/"),
        ("logs", ORG, f"logs/AWSLogs/{ORG}/{ACCOUNT}/"),
        ("AWSLogs", None, f"AWSLogs/{ACCOUNT}/"),
        (f"a/AWSLogs/{ORG}", None, f"a/AWSLogs/{ORG}/{ACCOUNT}/"),
        (f"a/AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/", ORG, f"a/AWSLogs/{ORG}/{ACCOUNT}/"),
        (f"AWSLogs/{ACCOUNT}", None, f"AWSLogs/{ACCOUNT}/"),
    ],
)
def test_cloudtrail_root(prefix: str, org: str | None, root: str) -> None:
    assert cloudtrail_root(prefix, account_id=ACCOUNT, org_id=org) == root


@pytest.mark.parametrize(
    "prefix",
    [
        "AWSLogs/999999999999/",
        f"AWSLogs/o-zzzzzzzzzz/{ACCOUNT}",
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/",
    ],
)
def test_cloudtrail_root_refuses_a_prefix_for_something_else(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        cloudtrail_root(prefix, account_id=ACCOUNT, org_id=ORG if "o-zz" in prefix else None)


def test_eks_root() -> None:
    assert eks_root("", account_id=ACCOUNT, cluster="c") == f"EKSLogs/{ACCOUNT}/c/"
    assert eks_root("fh/EKSLogs", account_id=ACCOUNT, cluster="c") == f"fh/EKSLogs/{ACCOUNT}/c/"
    assert (
        eks_root(f"EKSLogs/{ACCOUNT}/c", account_id=ACCOUNT, cluster="c") == f"EKSLogs/{ACCOUNT}/c/"
    )
    with pytest.raises(ValueError, match="cluster"):
        eks_root(f"EKSLogs/{ACCOUNT}/other", account_id=ACCOUNT, cluster="c")


def test_custom_prefix() -> None:
    assert custom_prefix("") == ""
    assert custom_prefix("logs") == "logs/"
    assert custom_prefix(f"x/y/AWSLogs/{ORG}/{ACCOUNT}/") == "x/y/"
    assert custom_prefix("fh/EKSLogs/") == "fh/"


def test_scope_prefixes() -> None:
    ct = cloudtrail_scope("logs", account_id=ACCOUNT, region="us-gov-west-1", org_id=ORG)
    assert ct.prefix == f"logs/AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/us-gov-west-1/"
    assert ct.scope == "us-gov-west-1"
    eks = eks_scope("", account_id=ACCOUNT, cluster="prod")
    assert eks.prefix == f"EKSLogs/{ACCOUNT}/prod/"
    assert eks.scope == ""


def _ct() -> ScopeLocation:
    return cloudtrail_scope("", account_id=ACCOUNT, region="us-east-1")


def _eks() -> ScopeLocation:
    return eks_scope("", account_id=ACCOUNT, cluster="prod")


BOUNDARIES = [
    # (a time, a moment just before it): keys across the boundary must sort around StartAfter.
    (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
    (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), datetime(2026, 2, 28, 23, 59, tzinfo=UTC)),
    (datetime(2028, 3, 1, 0, 0, tzinfo=UTC), datetime(2028, 2, 29, 23, 59, tzinfo=UTC)),
    (datetime(2028, 2, 29, 0, 0, tzinfo=UTC), datetime(2028, 2, 28, 23, 59, tzinfo=UTC)),
    (datetime(2026, 2, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 31, 23, 59, tzinfo=UTC)),
    (datetime(2026, 1, 15, 10, 0, tzinfo=UTC), datetime(2026, 1, 15, 9, 59, tzinfo=UTC)),
]


@pytest.mark.parametrize(("at", "before"), BOUNDARIES)
def test_cloudtrail_start_after_across_boundaries(at: datetime, before: datetime) -> None:
    loc = _ct()
    start = loc.start_after(at)
    assert ct_key(at) > start
    assert ct_key(at, unique="0") > start
    assert ct_key(before, unique="zzzz") < start
    # Later keys, across the boundary, all sort after: one listing reaches them.
    for later in (at + timedelta(minutes=1), at + timedelta(hours=1), at + timedelta(days=366)):
        assert ct_key(later) > start


def test_cloudtrail_start_after_floors_to_the_minute() -> None:
    loc = _ct()
    start = loc.start_after(datetime(2026, 1, 15, 12, 5, 59, tzinfo=UTC))
    assert ct_key(datetime(2026, 1, 15, 12, 5, tzinfo=UTC)) > start
    assert start.endswith(f"2026/01/15/{ACCOUNT}_CloudTrail_us-east-1_20260115T1205")


def test_start_after_converts_other_timezones_to_utc() -> None:
    local = datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert "2025/12/31/" in _ct().start_after(local)


@pytest.mark.parametrize(("at", "before"), BOUNDARIES)
def test_eks_start_after_across_boundaries(at: datetime, before: datetime) -> None:
    loc = _eks()
    start = loc.start_after(at)
    assert eks_key(at) > start
    assert eks_key(at.replace(minute=59), stream="a") > start
    assert eks_key(before, stream="zzz") < start
    assert eks_key(at + timedelta(days=366)) > start
    assert eks_key(at + timedelta(hours=1)) > start


def test_eks_start_after_covers_the_whole_hour_folder() -> None:
    # Streams sort by name inside an hour folder, so the whole folder must be listed.
    start = _eks().start_after(datetime(2026, 1, 15, 12, 40, tzinfo=UTC))
    assert eks_key(datetime(2026, 1, 15, 12, 1, tzinfo=UTC), stream="aaa") > start
    assert start == f"EKSLogs/{ACCOUNT}/prod/2026/01/15/12/"


def test_day_start_after_includes_the_whole_day() -> None:
    loc = _ct()
    start = loc.day_start_after(date(2025, 12, 31))
    assert ct_key(datetime(2025, 12, 31, 0, 0, tzinfo=UTC)) > start
    assert ct_key(datetime(2025, 12, 30, 23, 59, tzinfo=UTC)) < start
    eks = _eks()
    assert eks_key(datetime(2025, 12, 31, 0, 0, tzinfo=UTC)) > eks.day_start_after(
        date(2025, 12, 31)
    )


def test_owns_only_its_scope_logs() -> None:
    loc = _ct()
    t = datetime(2026, 1, 15, tzinfo=UTC)
    assert loc.owns(parsed(ct_key(t)))
    assert not loc.owns(parsed(ct_key(t, region="us-west-2")))
    assert not loc.owns(parsed(ct_key(t, prefix="other/")))
    assert not loc.owns(parsed(eks_key(t)))
    assert _eks().owns(parsed(eks_key(t)))
    assert not _eks().owns(parsed(eks_key(t, cluster="dev")))
    assert loc.kind is SourceKind.CLOUDTRAIL


def test_scope_location_from_a_source_row() -> None:
    ct = scope_location("cloudtrail", "logs", account_id=ACCOUNT, region="eu-west-1")
    assert ct == cloudtrail_scope("logs", account_id=ACCOUNT, region="eu-west-1")
    eks = scope_location("eks", "EKSLogs", account_id=ACCOUNT, cluster="prod")
    assert eks.prefix == f"EKSLogs/{ACCOUNT}/prod/"
    with pytest.raises(ValueError, match="region"):
        scope_location("cloudtrail", "logs", account_id=ACCOUNT)
    with pytest.raises(ValueError, match="cluster"):
        scope_location("eks", "", account_id=ACCOUNT)
    with pytest.raises(ValueError, match="unknown source kind"):
        scope_location("gcp", "", account_id=ACCOUNT, region="x")


def test_digits_other_than_ascii_are_not_an_account_or_a_date() -> None:
    """Python's \\d also matches Arabic-Indic and other digits; a key with them is not ours."""
    arabic = "".join(chr(0x0660 + int(c)) for c in ACCOUNT)
    key = ct_key(datetime(2026, 1, 15, 12, 5, tzinfo=UTC))
    assert parsed(key).account == ACCOUNT
    assert skipped(key.replace(ACCOUNT, arabic)).reason is SkipReason.UNRECOGNISED
    assert skipped(key.replace("2026/01/15", "\u0662026/01/15")).reason is SkipReason.UNRECOGNISED
