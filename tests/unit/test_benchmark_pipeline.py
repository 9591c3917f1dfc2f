"""The pure helpers of ``benchmarks.pipeline``: key layout, object plans, tallies, the table."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from benchmarks._fleet import (
    Figure,
    RequestTally,
    account_of,
    ct_key,
    operation_of,
    plan_objects,
    rate,
    render_table,
    unique_suffix,
)
from benchmarks.pipeline import CycleRequests
from harvester.sources.layouts import ParsedKey, classify

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_ct_key_follows_the_account_trail_layout() -> None:
    when = datetime(2026, 1, 15, 9, 5, tzinfo=UTC)
    key = ct_key("123456789012", "eu-west-1", when, "0123456789abcdef")
    assert key == (
        "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/01/15/"
        "123456789012_CloudTrail_eu-west-1_20260115T0905Z_0123456789abcdef.json.gz"
    )
    parsed = classify(key)
    assert isinstance(parsed, ParsedKey)
    assert parsed.time == when


def test_unique_suffix_is_alphanumeric_stable_and_distinct() -> None:
    assert unique_suffix(3) == unique_suffix(3)
    assert len({unique_suffix(i) for i in range(100)}) == 100
    assert unique_suffix(3).isalnum()
    assert unique_suffix(3, "a") != unique_suffix(3, "b")


def test_plan_objects_spreads_over_scopes_and_stays_inside_the_lookback() -> None:
    specs = plan_objects(
        now=NOW,
        count=40,
        accounts=("111111111111", "222222222222"),
        regions=("us-east-1", "eu-west-1"),
    )
    assert len(specs) == 40
    assert len({s.key for s in specs}) == 40
    assert len({s.seed for s in specs}) == 40
    scopes = Counter((s.account, s.region) for s in specs)
    assert set(scopes.values()) == {10}
    for spec in specs:
        assert NOW - timedelta(hours=3) <= spec.when <= NOW - timedelta(minutes=10)
        assert spec.when.second == 0
        parsed = classify(spec.key)
        assert isinstance(parsed, ParsedKey)
        assert parsed.time == spec.when
    assert plan_objects(now=NOW, count=0, accounts=("1",), regions=("r",)) == []


def test_operation_and_account_of_a_request() -> None:
    assert operation_of("before-parameter-build.s3.ListObjectsV2") == "ListObjectsV2"
    assert account_of({"Prefix": "AWSLogs/123456789012/CloudTrail/"}) == "123456789012"
    assert account_of({"Key": "AWSLogs/123456789012/CloudTrail/x.json.gz"}) == "123456789012"
    assert account_of({"Prefix": "EKSLogs/123456789012/"}) is None
    assert account_of({"Bucket": "b"}) is None


def test_request_tally_tells_discovery_from_scope_listings() -> None:
    tally = RequestTally()
    tally.record("ListObjectsV2", {"Prefix": "AWSLogs/123456789012/CloudTrail/", "Delimiter": "/"})
    tally.record("ListObjectsV2", {"Prefix": "AWSLogs/123456789012/CloudTrail/us-east-1/"})
    tally.record("GetObject", {"Key": "AWSLogs/123456789012/CloudTrail/us-east-1/k.json.gz"})
    tally.record("HeadObject", {"Key": "AWSLogs/123456789012/CloudTrail/us-east-1/k.json.gz"})
    tally.record(
        "ListObjectsV2", {"Prefix": "AWSLogs/123456789012/CloudTrail-Digest/", "Delimiter": "/"}
    )
    assert tally.of("123456789012", "LIST-discovery") == 1
    assert tally.of("123456789012", "LIST") == 1
    assert tally.of("123456789012", "GET") == 1
    assert tally.of("123456789012", "LIST-digest") == 1
    assert tally.kinds() == {"LIST-discovery", "LIST", "GET", "HeadObject", "LIST-digest"}
    taken = tally.reset()
    assert sum(taken.values()) == 5
    assert not tally.counts


def test_cycle_requests_target() -> None:
    account = "123456789012"
    good = Counter({(account, "LIST-discovery"): 1, (account, "LIST"): 2, (account, "GET"): 3})
    assert CycleRequests("c", {account: 3}, good).ok(regions=2)
    assert not CycleRequests("c", {account: 2}, good).ok(regions=2)  # a GET too many
    assert not CycleRequests("c", {account: 3}, good).ok(regions=3)  # a region not listed
    extra = good + Counter({(account, "HeadObject"): 1})
    assert not CycleRequests("c", {account: 3}, extra).ok(regions=2)
    steady = Counter({(account, "LIST"): 2, (account, "LIST-digest"): 1})
    assert CycleRequests("c", {account: 0}, steady).ok(regions=2)
    relisted = steady + Counter({(account, "LIST-discovery"): 2})
    assert not CycleRequests("c", {account: 0}, relisted).ok(regions=2)  # discovery twice


def test_render_table_and_verdicts() -> None:
    table = render_table(
        [
            Figure("ratio", "0.62", ">= 0.5", True),
            Figure("rate", "10 events/s", ">= 100", False),
            Figure("info", "42"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "measured", "target", "result"]
    assert lines[2].endswith("pass")
    assert lines[3].endswith("MISS")
    assert lines[4].split() == ["info", "42"]


def test_rate_guards_against_zero_time() -> None:
    assert rate(10, 2) == 5
    assert rate(10, 0) == 0
