"""The harvest's entry point on the moto bucket and both databases: every tampering case."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from harvester.aws.errors import AccessDenied
from harvester.db.anomaly_models import AnomalyRecord
from harvester.db.integrity_models import DigestVerification
from harvester.integrity.keys import FilePublicKeys, PublicKey
from harvester.sources.ledger import WorkReason
from tests.integration.integrity.conftest import HOURS, REGIONS, Harness, log_keys
from tests.unit.integrity.trail import BUCKET, START, altered_log, public_keys_json, signing_key

pytestmark = pytest.mark.integration


def rows(h: Harness) -> dict[str, DigestVerification]:
    return {
        row.digest_key: row
        for row in h.session.scalars(
            select(DigestVerification).where(DigestVerification.source_id == h.source_id)
        )
    }


def detectors(h: Harness) -> list[str]:
    return sorted(h.session.scalars(select(AnomalyRecord.detector)))


def anomaly(h: Harness, detector: str) -> AnomalyRecord:
    [found] = h.session.scalars(select(AnomalyRecord).where(AnomalyRecord.detector == detector))
    return found


def test_a_clean_trail_verifies_from_the_ledger_and_a_rerun_fetches_nothing(h: Harness) -> None:
    h.clock.now = START + timedelta(hours=HOURS, minutes=5)  # just after the last delivery
    h.deliver()
    result = h.verify()
    assert result.regions == 2
    assert (result.digests_listed, result.digests_verified, result.digests_failed) == (12, 12, 0)
    assert result.log_files_verified == 24
    # Every hash came from the ledger the harvest filled: no log file was read twice.
    assert result.log_files_downloaded == 0
    assert result.anomalies == []
    assert result.unharvested == []
    stored = rows(h)
    assert len(stored) == 12
    assert {r.status for r in stored.values()} == {"ok"}
    assert {r.signature for r in stored.values()} == {"valid"}
    assert sorted(r.chain for r in stored.values()).count("start") == 2
    first = stored[h.trail.digests["eu-west-1"][0]]
    assert first.digest_start == START
    assert first.digest_end == START + timedelta(hours=1)
    assert (first.log_files, first.log_files_verified) == (2, 2)

    # Ten minutes on, the next digest is not due yet: nothing is listed, nothing fetched.
    h.clock.advance(timedelta(minutes=10))
    again = h.verify()
    assert (again.regions, again.digests_listed, again.digests_verified) == (0, 0, 0)
    # An hour on, each region is listed from its watermark less the relist window: the
    # last two digests, already verified, are not fetched again.
    h.clock.advance(timedelta(hours=1))
    later = h.verify()
    assert (later.regions, later.digests_listed, later.digests_verified) == (2, 4, 0)
    assert later.checks == []
    assert {r.attempts for r in rows(h).values()} == {1}


def test_the_next_run_verifies_only_the_new_hour(h: Harness) -> None:
    h.deliver()
    h.verify()
    begin = START + timedelta(hours=HOURS)
    logs = [h.trail.log("us-east-1", begin + timedelta(minutes=7))]
    new = h.trail.digest("us-east-1", end=begin + timedelta(hours=1), logs=logs)
    h.deliver()
    h.clock.advance(timedelta(hours=1))
    result = h.verify()
    assert [c.key for c in result.checks] == [new]
    assert result.checks[0].chain.value == "intact"
    assert result.digests_verified == 1


def test_a_log_file_altered_after_harvest(h: Harness) -> None:
    h.deliver()
    digest = h.trail.digests["us-east-1"][3]
    log = h.trail.logs_of[digest][0]
    h.s3.put_object(Bucket=BUCKET, Key=log, Body=altered_log(h.trail.objects[log].body))
    result = h.verify()
    assert result.log_files_altered == 1
    assert result.digests_failed == 1
    # A new ETag: the ledger's hash is of another version, so this one was read and hashed.
    assert result.log_files_downloaded == 1
    assert rows(h)[digest].status == "failed"
    assert rows(h)[digest].error == "1 log file altered"
    found = anomaly(h, "integrity.log_altered")
    assert found.severity == "high"
    assert found.mitre_techniques == ["T1070", "T1562.008"]
    assert found.region == "us-east-1"
    assert [e["key"] for e in found.evidence] == [digest, log]


def test_a_log_file_altered_before_harvest_is_caught_from_the_ledger(h: Harness) -> None:
    digest = h.trail.digests["eu-west-1"][1]
    log = h.trail.logs_of[digest][1]
    h.trail.objects[log].body = altered_log(h.trail.objects[log].body)
    h.deliver()
    result = h.verify()
    assert result.log_files_altered == 1
    assert result.log_files_downloaded == 0
    assert detectors(h) == ["integrity.log_altered"]


def test_a_log_file_deleted(h: Harness) -> None:
    h.deliver()
    digest = h.trail.digests["eu-west-1"][4]
    log = h.trail.logs_of[digest][1]
    h.s3.delete_object(Bucket=BUCKET, Key=log)
    result = h.verify()
    assert result.log_files_missing == 1
    assert detectors(h) == ["integrity.log_missing"]
    assert f"s3://{BUCKET}/{log}" in anomaly(h, "integrity.log_missing").explanation


def test_a_digest_deleted_is_a_gap(h: Harness) -> None:
    h.deliver()
    keys = h.trail.digests["us-east-1"]
    h.s3.delete_object(Bucket=BUCKET, Key=keys[2])
    result = h.verify()
    assert result.digests_failed == 1
    assert rows(h)[keys[3]].chain == "gap"
    found = anomaly(h, "integrity.digest_missing")
    assert found.first_seen == START + timedelta(hours=2)
    assert found.last_seen == START + timedelta(hours=3)
    assert keys[2] in found.explanation


def test_the_chain_broken_by_a_replaced_digest(h: Harness) -> None:
    keys = h.trail.digests["eu-west-1"]
    h.trail.rewrite_digest(keys[2], lambda d: d.update(logFiles=d["logFiles"][:1]))
    h.deliver()
    result = h.verify()
    assert rows(h)[keys[3]].chain == "broken"
    assert rows(h)[keys[2]].status == "ok"  # re-signed: only its successor can tell
    assert result.digests_failed == 1
    assert detectors(h) == ["integrity.chain_broken"]


def test_a_wrong_signature(h: Harness) -> None:
    keys = h.trail.digests["us-east-1"]
    h.trail.objects[keys[1]].metadata["signature"] = "00" * 256
    h.deliver()
    h.verify()
    assert rows(h)[keys[1]].signature == "invalid"
    assert rows(h)[keys[2]].chain == "broken"  # its record of the predecessor's signature
    assert detectors(h) == ["integrity.chain_broken", "integrity.digest_invalid"]


def test_a_digest_signed_by_an_unknown_key(h: Harness) -> None:
    keys = h.trail.digests["eu-west-1"]
    h.trail.rewrite_digest(keys[5], lambda d: d.update(digestPublicKeyFingerprint="ab" * 16))
    h.deliver()
    h.verify()
    assert rows(h)[keys[5]].signature == "unknown_key"
    found = anomaly(h, "integrity.unknown_key")
    assert "ab" * 16 in found.explanation
    assert found.region == "eu-west-1"


def test_a_backfill_digest_is_verified_too(h: Harness) -> None:
    late = h.trail.log("us-east-1", START + timedelta(hours=4, minutes=55))
    backfill = h.trail.digest(
        "us-east-1", end=START + timedelta(hours=6, minutes=40), logs=[late], backfill=True
    )
    h.deliver()
    result = h.verify()
    assert rows(h)[backfill].backfill
    assert rows(h)[backfill].status == "ok"
    assert result.digests_verified == 13
    assert result.anomalies == []


def test_a_log_file_delivered_late_waits_for_its_harvest(h: Harness) -> None:
    digest = h.trail.digests["eu-west-1"][5]
    late = h.trail.logs_of[digest][0]
    h.deliver(skip=[late])
    first = h.verify()
    assert first.digests_pending == 1
    assert first.unharvested_keys == [late]
    [item] = first.unharvested
    assert item.reason is WorkReason.LATE
    assert item.scope == "eu-west-1"
    assert item.etag == h.trail.objects[late].etag
    assert first.log_files_downloaded == 0
    assert rows(h)[digest].status == "pending"
    # The caller queues it, the harvest hashes it on its way; the next run settles the digest.
    h.harvest([late])
    h.clock.advance(timedelta(minutes=10))
    second = h.verify()
    assert [c.key for c in second.checks] == [digest]
    assert second.digests_verified == 1
    assert second.log_files_downloaded == 0
    assert rows(h)[digest].status == "ok"
    assert rows(h)[digest].attempts == 2
    assert detectors(h) == []


def test_digests_that_stop_while_logs_arrive_are_overdue(h: Harness) -> None:
    keys = h.trail.digests["us-east-1"]
    for key in keys[3:]:
        del h.trail.objects[key]
    h.deliver()
    h.verify()
    found = anomaly(h, "integrity.digest_overdue")
    assert found.region == "us-east-1"
    assert found.first_seen == START + timedelta(hours=3)
    assert found.evidence[0]["key"] == keys[2]
    # Still overdue an hour later: the same anomaly, not a second one.
    h.clock.advance(timedelta(hours=1))
    h.verify()
    assert detectors(h) == ["integrity.digest_overdue"]


class DeniedKeys:
    def __init__(self) -> None:
        self.calls = 0

    def public_key(self, fingerprint: str, *, region: str, at: datetime) -> PublicKey | None:
        self.calls += 1
        raise AccessDenied(
            "access denied: the harvesting role may not cloudtrail:ListPublicKeys.",
            operation="ListPublicKeys",
            remedy="Allow cloudtrail:ListPublicKeys for the harvesting role.",
        )


def test_keys_that_cannot_be_fetched_leave_digests_to_retry(h: Harness) -> None:
    h.deliver()
    denied = DeniedKeys()
    result = h.verify(keys=denied)
    assert result.digests_error == 12
    assert result.anomalies == []
    assert "ListPublicKeys" in result.errors[0]
    assert {r.status for r in rows(h).values()} == {"error"}
    h.clock.advance(timedelta(minutes=10))
    result = h.verify()
    assert result.digests_verified == 12
    assert {r.attempts for r in rows(h).values()} == {2}


def test_a_trail_under_a_custom_prefix(h: Harness) -> None:
    h.trail = type(h.trail)(prefix="audit/ct/")
    h.trail.hours(REGIONS, count=2)
    h.deliver()
    result = h.verify()
    assert result.digests_verified == 4
    assert result.log_files_verified == len(log_keys(h.trail)) == 8
    assert h.session.scalar(select(func.count()).select_from(DigestVerification)) == 4


def test_keys_from_a_file_that_lacks_the_key_mean_unknown_key(h: Harness) -> None:
    h.deliver()
    other = FilePublicKeys.from_json(public_keys_json(signing_key("other")))
    result = h.verify(keys=other)
    assert result.digests_failed == 12
    assert {r.signature for r in rows(h).values()} == {"unknown_key"}


def test_a_trail_without_digests_is_looked_for_once_an_hour(h: Harness) -> None:
    prefixes: list[str] = []

    def count(params: dict[str, object], **_: object) -> None:
        prefixes.append(str(params.get("Prefix")))

    h.s3.meta.events.register("before-parameter-build.s3.ListObjectsV2", count)
    try:
        assert h.verify().regions == 0  # validation not on yet: no digest folder
        (listed,) = prefixes
        assert listed.endswith("/CloudTrail-Digest/")
        # A harvest every few minutes does not list the digest folder again each time.
        h.clock.advance(timedelta(minutes=10))
        assert h.verify().regions == 0
        assert len(prefixes) == 1
        # Digests that appear are found within the hour.
        h.deliver()
        h.clock.advance(timedelta(hours=1))
        found = h.verify()
        assert found.regions == 2
        assert found.digests_verified > 0
    finally:
        h.s3.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", count)
