"""The verifier on an in-memory bucket: signatures, the chain, log files, the ledger."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from harvester.integrity.keys import FilePublicKeys
from harvester.integrity.service import verify_digests
from harvester.integrity.verify import (
    ChainId,
    ChainStatus,
    DigestCheck,
    DigestStatus,
    KnownDigest,
    LedgerFact,
    LogStatus,
    SignatureStatus,
    Verifier,
    VerifyPolicy,
)
from harvester.sources.layouts import ObjectKind, ParsedKey, classify
from tests.conftest import FixedClock
from tests.unit.integrity.trail import (
    START,
    MemoryStore,
    Stored,
    Trail,
    altered_log,
    public_keys_json,
    signing_key,
)

REGIONS = ("us-east-1", "eu-west-1")
AFTER = START + timedelta(hours=7)  # an hour after the last digest of a 6-hour trail


class FakeLedger:
    def __init__(self, facts: Mapping[str, Sequence[LedgerFact]] | None = None) -> None:
        self.rows: dict[str, list[LedgerFact]] = {k: list(v) for k, v in (facts or {}).items()}
        self.remember = True

    def facts(self, keys: Sequence[str]) -> Mapping[str, Sequence[LedgerFact]]:
        return {key: self.rows[key] for key in keys if key in self.rows}

    def remembers(self, key: str) -> bool:
        return self.remember


class ListMemory:
    def __init__(self, known: Sequence[KnownDigest]) -> None:
        self.known = {k.key: k for k in known}

    def find(self, key: str) -> KnownDigest | None:
        return self.known.get(key)

    def latest_before(self, chain: ChainId, before: datetime) -> KnownDigest | None:
        fits = [
            k
            for k in self.known.values()
            if k.chain == chain and k.end is not None and k.end <= before
        ]
        return max(fits, key=lambda k: k.end or before, default=None)


def digest_keys(trail: Trail) -> list[tuple[str, ParsedKey]]:
    found = []
    for key in trail.objects:
        parsed = classify(key)
        if isinstance(parsed, ParsedKey) and parsed.kind is ObjectKind.DIGEST:
            found.append((key, parsed))
    return found


def run(
    trail: Trail,
    *,
    store: MemoryStore | None = None,
    ledger: FakeLedger | None = None,
    memory: ListMemory | None = None,
    now: datetime = AFTER,
    keys: FilePublicKeys | None = None,
) -> list[DigestCheck]:
    verifier = Verifier(
        store=store or MemoryStore(trail),
        keys=keys or FilePublicKeys.from_json(public_keys_json(signing_key())),
        clock=FixedClock(now),
        memory=memory,
        ledger=ledger,
        policy=VerifyPolicy(pending_timeout=timedelta(hours=6)),
    )
    return verify_digests(digest_keys(trail), verifier=verifier)


def by_key(checks: list[DigestCheck]) -> dict[str, DigestCheck]:
    return {check.key: check for check in checks}


@pytest.fixture
def trail() -> Trail:
    t = Trail()
    t.hours(REGIONS, count=6)
    return t


def test_an_untouched_trail_verifies_hour_by_hour(trail: Trail) -> None:
    store = MemoryStore(trail)
    checks = run(trail, store=store)
    assert len(checks) == 12
    assert {c.status for c in checks} == {DigestStatus.OK}
    assert {c.signature for c in checks} == {SignatureStatus.VALID}
    for region in REGIONS:
        first, *rest = trail.digests[region]
        found = by_key(checks)
        assert found[first].chain is ChainStatus.START
        assert {found[k].chain for k in rest} == {ChainStatus.INTACT}
    assert sum(c.count(LogStatus.VERIFIED) for c in checks) == 24
    # No ledger: every log file was read and hashed once; no predecessor was fetched twice.
    assert sorted(store.downloads) == sorted(k for keys in trail.logs_of.values() for k in keys)
    assert len(store.digest_reads) == 12


def test_an_altered_log_file_fails_its_digest_only(trail: Trail) -> None:
    digest = trail.digests["eu-west-1"][2]
    log = trail.logs_of[digest][1]
    trail.objects[log] = Stored(altered_log(trail.objects[log].body))
    checks = by_key(run(trail))
    check = checks[digest]
    assert check.status is DigestStatus.FAILED
    [bad] = [entry for entry in check.logs if entry.status is LogStatus.ALTERED]
    assert bad.key == log
    assert bad.actual != bad.expected
    assert check.failures == ["1 log file altered"]
    assert [c.key for c in checks.values() if c.status is not DigestStatus.OK] == [digest]


def test_a_deleted_log_file_is_missing(trail: Trail) -> None:
    digest = trail.digests["us-east-1"][4]
    log = trail.logs_of[digest][0]
    del trail.objects[log]
    check = by_key(run(trail))[digest]
    assert [entry.status for entry in check.logs] == [LogStatus.MISSING, LogStatus.VERIFIED]
    assert check.status is DigestStatus.FAILED


def test_a_deleted_digest_is_a_gap_in_the_chain(trail: Trail) -> None:
    keys = trail.digests["us-east-1"]
    del trail.objects[keys[2]]
    checks = by_key(run(trail))
    after = checks[keys[3]]
    assert after.chain is ChainStatus.GAP
    assert after.previous_key == keys[2]
    # The hour the deleted digest covered: from the end of the one before it.
    assert after.gap_start == START + timedelta(hours=2)
    assert after.gap_end == START + timedelta(hours=3)
    assert after.status is DigestStatus.FAILED
    assert "is missing" in (after.chain_detail or "")
    assert checks[keys[4]].chain is ChainStatus.INTACT


def test_a_replaced_digest_breaks_the_chain_at_the_next_one(trail: Trail) -> None:
    keys = trail.digests["eu-west-1"]
    hidden = trail.logs_of[keys[1]][0]
    # Even re-signed (as if the signer were compromised), dropping a log file from a digest
    # changes its hash, which the next digest recorded.
    trail.rewrite_digest(keys[1], lambda d: d.update(logFiles=d["logFiles"][1:]))
    del trail.objects[hidden]
    checks = by_key(run(trail))
    assert checks[keys[1]].signature is SignatureStatus.VALID
    assert checks[keys[1]].chain is ChainStatus.INTACT
    broken = checks[keys[2]]
    assert broken.chain is ChainStatus.BROKEN
    assert "content hash and signature" in (broken.chain_detail or "")
    assert broken.status is DigestStatus.FAILED


def test_a_digest_changed_after_signing_fails_its_signature(trail: Trail) -> None:
    keys = trail.digests["us-east-1"]
    trail.rewrite_digest(keys[3], lambda d: d.update(logFiles=[]), resign=False)
    checks = by_key(run(trail))
    assert checks[keys[3]].signature is SignatureStatus.INVALID
    assert checks[keys[3]].status is DigestStatus.FAILED
    assert checks[keys[4]].chain is ChainStatus.BROKEN


def test_a_digest_signed_by_an_unknown_key_is_reported() -> None:
    trail = Trail()
    start = START
    for hour in range(3):
        begin = start + timedelta(hours=hour)
        logs = [trail.log("us-east-1", begin + timedelta(minutes=10))]
        signer = signing_key("rogue") if hour == 1 else None
        trail.digest("us-east-1", end=begin + timedelta(hours=1), logs=logs, signer=signer)
    checks = by_key(run(trail, now=start + timedelta(hours=4)))
    rogue = checks[trail.digests["us-east-1"][1]]
    assert rogue.signature is SignatureStatus.UNKNOWN_KEY
    assert rogue.status is DigestStatus.FAILED
    assert [c.signature for c in checks.values()].count(SignatureStatus.VALID) == 2


def test_a_new_chain_after_a_pause_is_a_logging_gap(trail: Trail) -> None:
    later = START + timedelta(hours=9)
    logs = [trail.log("us-east-1", later - timedelta(minutes=50))]
    key = trail.digest("us-east-1", end=later, logs=logs, new_chain=True)
    check = by_key(run(trail, now=later + timedelta(hours=1)))[key]
    assert check.chain is ChainStatus.RESTARTED
    assert check.gap_start == START + timedelta(hours=6)
    assert check.gap_end == later - timedelta(hours=1)
    assert check.status is DigestStatus.FAILED


def test_a_backfill_digest_verifies_outside_the_chain(trail: Trail) -> None:
    late = trail.log("us-east-1", START + timedelta(hours=2, minutes=50))
    key = trail.digest(
        "us-east-1", end=START + timedelta(hours=6, minutes=20), logs=[late], backfill=True
    )
    checks = by_key(run(trail))
    backfill = checks[key]
    assert backfill.backfill
    assert backfill.status is DigestStatus.OK
    assert backfill.chain is ChainStatus.START
    assert [entry.status for entry in backfill.logs] == [LogStatus.VERIFIED]
    # The regular chain is not disturbed by it.
    assert checks[trail.digests["us-east-1"][-1]].chain is ChainStatus.INTACT


def harvested(trail: Trail, keys: Sequence[str], *, sha: str | None = None) -> FakeLedger:
    import hashlib

    return FakeLedger(
        {
            key: [
                LedgerFact(
                    key,
                    trail.objects[key].etag,
                    "done",
                    sha or hashlib.sha256(trail.content(key)).hexdigest(),
                )
            ]
            for key in keys
        }
    )


def all_logs(trail: Trail) -> list[str]:
    return [key for keys in trail.logs_of.values() for key in keys]


def test_hashes_come_from_the_ledger_without_a_second_download(trail: Trail) -> None:
    store = MemoryStore(trail)
    checks = run(trail, store=store, ledger=harvested(trail, all_logs(trail)))
    assert {c.status for c in checks} == {DigestStatus.OK}
    assert store.downloads == []
    assert {entry.source for c in checks for entry in c.logs} == {"ledger"}


def test_a_ledger_hash_that_differs_is_an_alteration_before_harvest(trail: Trail) -> None:
    store = MemoryStore(trail)
    digest = trail.digests["us-east-1"][0]
    ledger = harvested(trail, all_logs(trail))
    log = trail.logs_of[digest][0]
    ledger.rows[log] = [LedgerFact(log, trail.objects[log].etag, "done", "00" * 32)]
    check = by_key(run(trail, store=store, ledger=ledger))[digest]
    assert check.logs[0].status is LogStatus.ALTERED
    assert check.logs[0].source == "ledger"
    assert store.downloads == []


def test_a_log_replaced_after_harvest_is_read_again_and_found_altered(trail: Trail) -> None:
    store = MemoryStore(trail)
    ledger = harvested(trail, all_logs(trail))
    digest = trail.digests["eu-west-1"][5]
    log = trail.logs_of[digest][1]
    trail.objects[log] = Stored(altered_log(trail.objects[log].body))  # a new ETag
    check = by_key(run(trail, store=store, ledger=ledger))[digest]
    assert check.logs[1].status is LogStatus.ALTERED
    assert check.logs[1].source == "download"
    assert store.downloads == [log]


def test_unharvested_log_files_wait_for_the_harvest_then_are_hashed_here(trail: Trail) -> None:
    digest = trail.digests["us-east-1"][5]
    late = trail.logs_of[digest][0]
    ledger = harvested(trail, [k for k in all_logs(trail) if k != late])
    store = MemoryStore(trail)
    young = by_key(run(trail, store=store, ledger=ledger))[digest]
    assert young.status is DigestStatus.PENDING
    assert young.logs[0].status is LogStatus.PENDING
    assert young.logs[0].unharvested
    assert store.downloads == []
    # Past the pending timeout it is hashed here, and still reported for harvest.
    store = MemoryStore(trail)
    old = by_key(run(trail, store=store, ledger=ledger, now=AFTER + timedelta(hours=7)))[digest]
    assert old.status is DigestStatus.OK
    assert old.logs[0].unharvested
    assert store.downloads == [late]


def test_a_log_file_being_harvested_is_pending_but_not_unharvested(trail: Trail) -> None:
    digest = trail.digests["eu-west-1"][5]
    log = trail.logs_of[digest][0]
    ledger = harvested(trail, all_logs(trail))
    ledger.rows[log] = [LedgerFact(log, trail.objects[log].etag, "queued", None)]
    check = by_key(run(trail, ledger=ledger))[digest]
    assert check.logs[0].status is LogStatus.PENDING
    assert not check.logs[0].unharvested


def test_a_log_older_than_the_ledger_keeps_is_hashed_not_reported_unharvested(trail: Trail) -> None:
    digest = trail.digests["eu-west-1"][0]
    ledger = FakeLedger()
    ledger.remember = False
    check = by_key(run(trail, ledger=ledger))[digest]
    assert {entry.status for entry in check.logs} == {LogStatus.VERIFIED}
    assert not any(entry.unharvested for entry in check.logs)


def test_a_digest_without_signature_metadata_is_unsigned(trail: Trail) -> None:
    key = trail.digests["us-east-1"][1]
    trail.objects[key].metadata.clear()
    check = by_key(run(trail))[key]
    assert check.signature is SignatureStatus.UNSIGNED
    assert check.status is DigestStatus.FAILED


def test_a_local_copy_has_no_signatures_but_still_a_hash_chain(trail: Trail) -> None:
    keys = trail.digests["us-east-1"]
    trail.rewrite_digest(keys[2], lambda d: d.update(logFiles=[]), resign=False)
    checks = by_key(run(trail, store=MemoryStore(trail, signed=False)))
    assert {c.signature for c in checks.values()} == {SignatureStatus.NOT_CHECKED}
    assert checks[keys[1]].status is DigestStatus.OK
    # previousDigestHashValue still catches the edit, without any signature.
    assert checks[keys[3]].chain is ChainStatus.BROKEN
    assert "content hash" in (checks[keys[3]].chain_detail or "")


def test_a_digest_moved_from_where_it_was_delivered_is_refused(trail: Trail) -> None:
    original = trail.digests["eu-west-1"][0]
    moved = original.replace("T010031Z", "T010032Z")
    trail.objects[moved] = trail.objects[original]
    check = by_key(run(trail))[moved]
    assert check.problem is not None
    assert "moved or copied" in check.problem
    assert check.status is DigestStatus.FAILED


def test_a_digest_that_is_not_gzip_json_is_reported_not_crashed_on(trail: Trail) -> None:
    key = trail.digests["us-east-1"][0]
    trail.objects[key] = Stored(b"\x1f\x8b\x08\x00broken", trail.objects[key].metadata)
    checks = by_key(run(trail))
    assert "not readable" in (checks[key].problem or "")
    # Its successor cannot check its link against it either.
    assert checks[trail.digests["us-east-1"][1]].chain is ChainStatus.BROKEN


def test_a_log_file_that_is_no_longer_gzip_is_altered(trail: Trail) -> None:
    digest = trail.digests["us-east-1"][0]
    log = trail.logs_of[digest][0]
    trail.objects[log] = Stored(b"\x1f\x8b\x08\x00truncated")
    check = by_key(run(trail))[digest]
    assert check.logs[0].status is LogStatus.ALTERED
    assert "gzip" in (check.logs[0].detail or "")


def test_remembered_digests_vouch_for_the_next_link_without_a_fetch(trail: Trail) -> None:
    keys = trail.digests["us-east-1"]
    first = Verifier(
        store=MemoryStore(trail),
        keys=FilePublicKeys.from_json(public_keys_json(signing_key())),
        clock=FixedClock(AFTER),
    )
    earlier = [first.verify(key, parsed) for key, parsed in digest_keys(trail) if key in keys[:3]]
    known = [c.known() for c in earlier]
    store = MemoryStore(trail)
    later = [(k, p) for k, p in digest_keys(trail) if k in keys[3:]]
    verifier = Verifier(
        store=store,
        keys=FilePublicKeys.from_json(public_keys_json(signing_key())),
        clock=FixedClock(AFTER),
        memory=ListMemory([k for k in known if k is not None]),
    )
    checks = verify_digests(later, verifier=verifier)
    assert [c.chain for c in checks] == [ChainStatus.INTACT] * 3
    assert store.digest_reads == keys[3:]


def test_keys_are_asked_for_in_the_digests_region_and_time(trail: Trail) -> None:
    asked: list[tuple[str, str, datetime]] = []
    keys = FilePublicKeys.from_json(public_keys_json(signing_key()))

    class Recording:
        def public_key(self, fingerprint: str, *, region: str, at: datetime) -> Any:
            asked.append((fingerprint, region, at))
            return keys.public_key(fingerprint, region=region, at=at)

    verifier = Verifier(store=MemoryStore(trail), keys=Recording(), clock=FixedClock(AFTER))
    key, parsed = next((k, p) for k, p in digest_keys(trail) if k == trail.digests["eu-west-1"][0])
    verifier.verify(key, parsed)
    digest = json.loads(gzip.decompress(trail.objects[key].body))
    assert asked == [
        (digest["digestPublicKeyFingerprint"], "eu-west-1", START + timedelta(hours=1))
    ]
