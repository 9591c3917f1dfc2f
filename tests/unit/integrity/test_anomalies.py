"""Integrity anomalies (stable keys, ATT&CK, evidence, words) and overdue digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from harvester.detect.model import Severity
from harvester.integrity.anomalies import anomalies_for, overdue_anomaly
from harvester.integrity.service import find_overdue
from harvester.integrity.verify import ChainId, DigestCheck
from tests.unit.integrity.test_verify import REGIONS, by_key, run
from tests.unit.integrity.trail import START, Stored, Trail, altered_log


@pytest.fixture
def trail() -> Trail:
    t = Trail()
    t.hours(REGIONS, count=4)
    return t


def checks_of(trail: Trail) -> dict[str, DigestCheck]:
    return by_key(run(trail, now=START + timedelta(hours=5)))


def test_a_verified_trail_raises_nothing(trail: Trail) -> None:
    assert [a for c in checks_of(trail).values() for a in anomalies_for(c)] == []


def test_an_altered_log_raises_one_high_anomaly_pointing_at_digest_and_log(trail: Trail) -> None:
    digest = trail.digests["us-east-1"][1]
    log = trail.logs_of[digest][0]
    trail.objects[log] = Stored(altered_log(trail.objects[log].body))
    [anomaly] = anomalies_for(checks_of(trail)[digest])
    assert anomaly.detector == "integrity.log_altered"
    assert anomaly.severity is Severity.high
    assert anomaly.mitre_techniques == ("T1070", "T1562.008")
    assert anomaly.mitre_tactics == ("TA0005",)
    assert anomaly.account_id == trail.account
    assert anomaly.region == "us-east-1"
    assert [e.key for e in anomaly.evidence] == [digest, log]
    assert anomaly.evidence[1].index == 0
    assert f"s3://{trail.bucket}/{log}" in anomaly.explanation
    assert "not the file CloudTrail delivered" in anomaly.explanation
    assert anomaly.first_seen == START + timedelta(hours=1)
    # The same finding on another run has the same key, so it is updated, not repeated.
    [again] = anomalies_for(checks_of(trail)[digest])
    assert again.dedup_key == anomaly.dedup_key
    assert again.id == anomaly.id


def test_each_file_of_a_digest_has_its_own_key(trail: Trail) -> None:
    digest = trail.digests["eu-west-1"][2]
    for log in trail.logs_of[digest]:
        del trail.objects[log]
    found = anomalies_for(checks_of(trail)[digest])
    assert [a.detector for a in found] == ["integrity.log_missing"] * 2
    assert len({a.dedup_key for a in found}) == 2
    assert "no longer in the bucket" in found[0].explanation


def test_a_gap_names_the_missing_digest_and_the_uncovered_time(trail: Trail) -> None:
    keys = trail.digests["us-east-1"]
    del trail.objects[keys[1]]
    [anomaly] = anomalies_for(checks_of(trail)[keys[2]])
    assert anomaly.detector == "integrity.digest_missing"
    assert anomaly.first_seen == START + timedelta(hours=1)
    assert anomaly.last_seen == START + timedelta(hours=2)
    assert [e.key for e in anomaly.evidence] == [keys[2], keys[1]]
    assert "2026-01-15 01:00 UTC to 2026-01-15 02:00 UTC" in anomaly.explanation


def test_a_bad_signature_and_the_broken_link_after_it_are_both_raised(trail: Trail) -> None:
    keys = trail.digests["eu-west-1"]
    trail.rewrite_digest(keys[1], lambda d: d.update(logFiles=[]), resign=False)
    checks = checks_of(trail)
    [invalid] = anomalies_for(checks[keys[1]])
    [broken] = anomalies_for(checks[keys[2]])
    assert invalid.detector == "integrity.digest_invalid"
    assert "signature does not match its content" in invalid.explanation
    assert broken.detector == "integrity.chain_broken"
    assert broken.evidence[1].key == keys[1]


def test_a_check_that_could_not_run_raises_nothing(trail: Trail) -> None:
    check = checks_of(trail)[trail.digests["us-east-1"][0]]
    check.error = "access denied"
    del trail.objects[trail.logs_of[check.key][0]]
    assert anomalies_for(check) == []


T0 = datetime(2026, 1, 15, 0, 0, 31, tzinfo=UTC)
CHAIN = ChainId("123456789012", "us-east-1", "main")


def test_digests_that_stop_while_logs_arrive_are_overdue() -> None:
    logs = {
        CHAIN: (
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/15/x.json.gz",
            T0 + timedelta(minutes=20),
        )
    }
    asked: list[datetime] = []

    def first_log_after(chain: ChainId, after: datetime) -> tuple[str, datetime] | None:
        asked.append(after)
        return logs.get(chain)

    def overdue(now: datetime) -> list[object]:
        return list(
            find_overdue(
                [(CHAIN, "last-digest", T0)],
                first_log_after=first_log_after,
                bucket="b",
                now=now,
                grace=timedelta(hours=2),
            )
        )

    # The digest covering a 00:20 log is due around 01:20, and late past 03:20.
    assert overdue(T0 + timedelta(hours=3)) == []
    [found] = overdue(T0 + timedelta(hours=3, minutes=30))
    assert asked[-1] == T0 + timedelta(minutes=5)
    anomaly = overdue_anomaly(found, location="s3://b/last-digest")  # type: ignore[arg-type]
    assert anomaly.detector == "integrity.digest_overdue"
    assert "No CloudTrail digest file has been delivered" in anomaly.explanation
    # No logs after the last digest: a trail that stopped logging is not overdue.
    logs.clear()
    assert overdue(T0 + timedelta(days=2)) == []


def test_only_the_newest_chain_of_a_region_is_judged() -> None:
    old = ChainId("123456789012", "us-east-1", "deleted-trail")

    def first_log_after(chain: ChainId, after: datetime) -> tuple[str, datetime] | None:
        return ("log", after + timedelta(minutes=1))

    found = find_overdue(
        [(old, "old-digest", T0), (CHAIN, "new-digest", T0 + timedelta(hours=10))],
        first_log_after=first_log_after,
        bucket="b",
        now=T0 + timedelta(hours=11),
        grace=timedelta(hours=2),
    )
    assert found == []
