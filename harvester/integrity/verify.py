"""Verifying one digest: its signature, its link to the digest before it, its log files.

:class:`Verifier` does what AWS's ``validate-logs`` does for a digest, with three
differences that matter to a harvester:

- a log file's hash comes from the harvest ledger when the ledger holds the very version
  (same ETag) that is in the bucket now, so no log file is downloaded a second time;
- a log file not harvested yet (or still being harvested) is *pending* for a while, so the
  harvest hashes it on its way and the digest is verified on a later run;
- the digests a run has seen, and those verified before (``DigestMemory``), vouch for the
  next digest's link without fetching its predecessor again.

Nothing here touches the database; the caller hands in views of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from harvester.aws.errors import AwsError
from harvester.clock import Clock
from harvester.integrity.digest import Digest, DigestFormatError, parse_digest
from harvester.integrity.keys import PublicKeyError, PublicKeyProvider, verify_signature
from harvester.integrity.stores import DigestObject, ObjectStat, TrailStore
from harvester.parse import CorruptObjectError
from harvester.sources.layouts import ObjectKind, ParsedKey, classify

__all__ = [
    "ChainId",
    "ChainStatus",
    "DigestCheck",
    "DigestMemory",
    "DigestStatus",
    "KnownDigest",
    "LedgerFact",
    "LedgerView",
    "LogCheck",
    "LogStatus",
    "SignatureStatus",
    "Verifier",
    "VerifyPolicy",
]


class SignatureStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # does not verify with the key it names
    UNKNOWN_KEY = "unknown_key"  # names a key CloudTrail never published for the region
    UNSIGNED = "unsigned"  # no signature in the object's metadata
    NOT_CHECKED = "not_checked"  # a local copy (no metadata), or no key provider


class ChainStatus(StrEnum):
    INTACT = "intact"  # the predecessor it names is there and matches
    START = "start"  # the first digest of a chain, nothing known before it
    RESTARTED = "restarted"  # a new chain after an earlier one: nothing covers the time between
    BROKEN = "broken"  # the predecessor is there but is not what this digest recorded
    GAP = "gap"  # the predecessor it names is gone
    NOT_CHECKED = "not_checked"


class LogStatus(StrEnum):
    VERIFIED = "verified"
    MISSING = "missing"
    ALTERED = "altered"
    PENDING = "pending"  # not harvested yet: verified on a later run


class DigestStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    PENDING = "pending"
    ERROR = "error"  # could not be verified now (AWS unreachable, denied): tried again

    @property
    def final(self) -> bool:
        return self in (DigestStatus.OK, DigestStatus.FAILED)


@dataclass(frozen=True, slots=True)
class ChainId:
    """One chain of digests: a trail's digests for one account and region."""

    account: str
    region: str
    trail: str

    @classmethod
    def of(cls, parsed: ParsedKey) -> ChainId:
        return cls(parsed.account, parsed.region or "", parsed.trail_name or "")

    def describe(self) -> str:
        return f"trail {self.trail} in {self.region} (account {self.account})"


@dataclass(frozen=True, slots=True)
class KnownDigest:
    """What the next digest's link is checked against."""

    key: str
    chain: ChainId | None
    start: datetime | None
    end: datetime | None
    sha256: str
    signature: str | None  # None for a local copy
    backfill: bool = False


class DigestMemory(Protocol):
    """Digests verified before (the database's record of them)."""

    def find(self, key: str) -> KnownDigest | None: ...

    def latest_before(self, chain: ChainId, before: datetime) -> KnownDigest | None:
        """The regular (not backfill) digest of ``chain`` that ended last, by ``before``."""
        ...


@dataclass(frozen=True, slots=True)
class LedgerFact:
    """A ledger row of a log file: the version (ETag) harvested, and the hash taken then."""

    key: str
    etag: str
    status: str  # queued | done | corrupt | failed
    sha256: str | None


class LedgerView(Protocol):
    def facts(self, keys: Sequence[str]) -> Mapping[str, Sequence[LedgerFact]]: ...

    def remembers(self, key: str) -> bool:
        """Whether the ledger still keeps rows as old as ``key``: if not, a missing row
        proves nothing (it may have been pruned after the harvest)."""
        ...


@dataclass(frozen=True, slots=True)
class VerifyPolicy:
    # How long after a digest's end its log files may wait for the harvest to hash them;
    # after that they are downloaded and hashed here.
    pending_timeout: timedelta = timedelta(hours=6)
    # A chain's next digest starts where the last one ended; allow for rounding.
    link_slack: timedelta = timedelta(minutes=2)


@dataclass(slots=True)
class LogCheck:
    index: int  # in the digest's logFiles
    bucket: str
    key: str
    expected: str
    status: LogStatus
    actual: str | None = None
    source: Literal["ledger", "download"] | None = None
    detail: str | None = None
    # In the bucket but never harvested: the caller queues it.
    unharvested: bool = False
    stat: ObjectStat | None = None


@dataclass(slots=True)
class DigestCheck:
    key: str
    bucket: str
    parsed: ParsedKey
    location: str  # s3://bucket/key or a path, for messages
    digest: Digest | None = None
    signature: SignatureStatus = SignatureStatus.NOT_CHECKED
    signature_hex: str | None = None
    key_fingerprint: str | None = None
    chain: ChainStatus = ChainStatus.NOT_CHECKED
    chain_detail: str | None = None
    previous_key: str | None = None
    previous_location: str | None = None
    gap_start: datetime | None = None  # the uncovered time of a GAP or RESTARTED chain
    gap_end: datetime | None = None
    problem: str | None = None  # why the digest itself cannot be trusted (not readable, moved)
    error: str | None = None  # why it could not be verified now
    logs: list[LogCheck] = field(default_factory=list)

    @property
    def chain_id(self) -> ChainId:
        return ChainId.of(self.parsed)

    @property
    def backfill(self) -> bool:
        return self.parsed.backfill

    @property
    def delivered_at(self) -> datetime:
        return self.parsed.time

    def count(self, status: LogStatus) -> int:
        return sum(1 for log in self.logs if log.status is status)

    @property
    def failures(self) -> list[str]:
        """Every reason this digest's hour cannot be vouched for, in words."""
        reasons: list[str] = []
        if self.problem:
            reasons.append(self.problem)
        if self.signature in (
            SignatureStatus.INVALID,
            SignatureStatus.UNKNOWN_KEY,
            SignatureStatus.UNSIGNED,
        ):
            reasons.append(f"signature {self.signature.value.replace('_', ' ')}")
        if self.chain in (ChainStatus.BROKEN, ChainStatus.GAP, ChainStatus.RESTARTED):
            reasons.append(self.chain_detail or f"chain {self.chain.value}")
        missing, altered = self.count(LogStatus.MISSING), self.count(LogStatus.ALTERED)
        if missing:
            reasons.append(f"{missing} log file{'s' if missing > 1 else ''} missing")
        if altered:
            reasons.append(f"{altered} log file{'s' if altered > 1 else ''} altered")
        return reasons

    @property
    def status(self) -> DigestStatus:
        if self.error:
            return DigestStatus.ERROR
        if self.failures:
            return DigestStatus.FAILED
        if self.count(LogStatus.PENDING):
            return DigestStatus.PENDING
        return DigestStatus.OK

    def known(self) -> KnownDigest | None:
        if self.digest is None:
            return None
        return KnownDigest(
            key=self.key,
            chain=self.chain_id,
            start=self.digest.start_time,
            end=self.digest.end_time,
            sha256=self.digest.sha256,
            signature=self.signature_hex,
            backfill=self.backfill,
        )


class _NoMemory:
    def find(self, key: str) -> KnownDigest | None:
        return None

    def latest_before(self, chain: ChainId, before: datetime) -> KnownDigest | None:
        return None


class Verifier:
    """Verifies digests one at a time, oldest first, remembering them for the next links.

    ``keys`` None leaves signatures unchecked (a local copy has none to check anyway);
    ``ledger`` None hashes every log file by reading it.
    """

    def __init__(
        self,
        *,
        store: TrailStore,
        keys: PublicKeyProvider | None,
        clock: Clock,
        memory: DigestMemory | None = None,
        ledger: LedgerView | None = None,
        policy: VerifyPolicy | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.memory: DigestMemory = memory or _NoMemory()
        self.ledger = ledger
        self.policy = policy or VerifyPolicy()
        self.seen: dict[str, KnownDigest] = {}

    # --- one digest -------------------------------------------------------------------------

    def verify(self, key: str, parsed: ParsedKey) -> DigestCheck:
        check = DigestCheck(
            key=key, bucket=self.store.bucket, parsed=parsed, location=self.store.location(key)
        )
        try:
            self._verify(check)
        except AwsError as exc:
            check.error = exc.describe()
        except PublicKeyError as exc:
            check.error = f"CloudTrail's public keys could not be read: {exc}"
        return check

    def _verify(self, check: DigestCheck) -> None:
        try:
            stored = self.store.read_digest(check.key)
        except DigestFormatError as exc:
            check.problem = f"the digest file is not readable: {exc}"
            return
        if stored is None:
            check.problem = "the digest file was removed while it was being verified"
            return
        try:
            digest = parse_digest(stored.content)
        except DigestFormatError as exc:
            check.problem = f"the digest file is not a CloudTrail digest: {exc}"
            return
        check.digest = digest
        check.signature_hex = stored.signature
        check.key_fingerprint = digest.public_key_fingerprint
        if digest.key != check.key or (self.store.signed and digest.bucket != self.store.bucket):
            check.problem = (
                f"the digest file says it was delivered to s3://{digest.bucket}/{digest.key}, "
                "not where it is: it was moved or copied from elsewhere"
            )
        known = check.known()
        assert known is not None
        self.seen[check.key] = known
        self._signature(check, digest, stored)
        if check.error:
            return
        self._link(check, digest)
        self._log_files(check, digest)

    def _signature(self, check: DigestCheck, digest: Digest, stored: DigestObject) -> None:
        if not self.store.signed:
            check.signature = SignatureStatus.NOT_CHECKED
            return
        if not stored.signature:
            check.signature = SignatureStatus.UNSIGNED
            return
        if self.keys is None:
            check.signature = SignatureStatus.NOT_CHECKED
            return
        public = self.keys.public_key(
            digest.public_key_fingerprint, region=check.parsed.region or "", at=digest.end_time
        )
        if public is None:
            check.signature = SignatureStatus.UNKNOWN_KEY
            return
        valid = verify_signature(
            public.key,
            signature_hex=stored.signature,
            signed=digest.signed_bytes(),
            algorithm=stored.signature_algorithm or digest.signature_algorithm,
        )
        check.signature = SignatureStatus.VALID if valid else SignatureStatus.INVALID

    # --- the chain --------------------------------------------------------------------------

    def _latest_before(
        self, chain: ChainId, before: datetime, *, not_key: str
    ) -> KnownDigest | None:
        candidates = [
            known
            for known in self.seen.values()
            if known.chain == chain
            and not known.backfill
            and known.key != not_key
            and known.end is not None
            and known.end <= before
        ]
        remembered = self.memory.latest_before(chain, before)
        if remembered is not None and remembered.key != not_key:
            candidates.append(remembered)
        return max(candidates, key=lambda k: k.end or before, default=None)

    def _predecessor(self, key: str, bucket: str | None) -> KnownDigest | None:
        """The digest at ``key`` as far as the link needs it; None when it does not exist.

        Raises DigestFormatError when it exists but is not a readable digest.
        """
        known = self.seen.get(key) or self.memory.find(key)
        if known is not None:
            return known
        other = bucket if bucket and self.store.bucket and bucket != self.store.bucket else None
        stored = self.store.read_digest(key, other)
        if stored is None:
            return None
        parsed = classify(key)
        chain = (
            ChainId.of(parsed)
            if isinstance(parsed, ParsedKey) and parsed.kind is ObjectKind.DIGEST
            else None
        )
        start = end = None
        try:
            content = parse_digest(stored.content)
            start, end = content.start_time, content.end_time
            sha256 = content.sha256
        except DigestFormatError:
            sha256 = hashlib.sha256(stored.content).hexdigest()
        known = KnownDigest(
            key=key,
            chain=chain,
            start=start,
            end=end,
            sha256=sha256,
            signature=stored.signature,
            backfill=isinstance(parsed, ParsedKey) and parsed.backfill,
        )
        self.seen[key] = known
        return known

    def _link(self, check: DigestCheck, digest: Digest) -> None:
        slack = self.policy.link_slack
        before = digest.start_time + slack
        if digest.previous_key is None:
            earlier = (
                None
                if check.backfill
                else self._latest_before(check.chain_id, before, not_key=check.key)
            )
            # A chain that begins where the last one ended lost no time (a trail update).
            if earlier is None or earlier.end is None or earlier.end + slack >= digest.start_time:
                check.chain = ChainStatus.START
                return
            check.chain = ChainStatus.RESTARTED
            check.gap_start, check.gap_end = earlier.end, digest.start_time
            uncovered = _span(earlier.end, digest.start_time)
            check.chain_detail = f"a new digest chain starts here: no digest covers {uncovered}"
            return
        check.previous_key = digest.previous_key
        check.previous_location = self.store.location(digest.previous_key, digest.previous_bucket)
        try:
            previous = self._predecessor(digest.previous_key, digest.previous_bucket)
        except DigestFormatError:
            check.chain = ChainStatus.BROKEN
            check.chain_detail = "the digest before it is not a readable digest file"
            return
        if previous is None:
            check.chain = ChainStatus.GAP
            earlier = self._latest_before(check.chain_id, before, not_key=check.key)
            check.gap_start = earlier.end if earlier is not None else None
            check.gap_end = digest.start_time
            check.chain_detail = (
                f"the digest before it ({check.previous_location}) is missing, so "
                f"{_span(check.gap_start, check.gap_end)} is not covered"
            )
            return
        mismatches = []
        if digest.previous_hash_value is not None and digest.previous_hash_value != previous.sha256:
            mismatches.append("content hash")
        if (
            digest.previous_signature is not None
            and previous.signature is not None
            and digest.previous_signature.lower() != previous.signature.lower()
        ):
            mismatches.append("signature")
        if mismatches:
            check.chain = ChainStatus.BROKEN
            check.chain_detail = (
                f"the digest before it ({check.previous_location}) does not have the "
                f"{' and '.join(mismatches)} this digest recorded for it"
            )
            return
        check.chain = ChainStatus.INTACT

    # --- the log files ----------------------------------------------------------------------

    def _log_files(self, check: DigestCheck, digest: Digest) -> None:
        if not digest.log_files:
            return
        own = self.store.bucket
        by_bucket: dict[str | None, list[str]] = {}
        for entry in digest.log_files:
            other = entry.bucket if own and entry.bucket != own else None
            by_bucket.setdefault(other, []).append(entry.key)
        stats: dict[tuple[str | None, str], ObjectStat] = {}
        for bucket, keys in by_bucket.items():
            for key, stat in self.store.stat(keys, bucket).items():
                stats[(bucket, key)] = stat
        facts: Mapping[str, Sequence[LedgerFact]] = {}
        if self.ledger is not None and None in by_bucket:
            facts = self.ledger.facts(by_bucket[None])
        young = self.clock() - digest.end_time < self.policy.pending_timeout
        for index, entry in enumerate(digest.log_files):
            other = entry.bucket if own and entry.bucket != own else None
            log = LogCheck(
                index=index,
                bucket=entry.bucket,
                key=entry.key,
                expected=entry.hash_value,
                status=LogStatus.PENDING,
                stat=stats.get((other, entry.key)),
            )
            check.logs.append(log)
            if log.stat is None:
                log.status = LogStatus.MISSING
                continue
            self._log_file(log, facts.get(entry.key, ()) if other is None else (), other, young)

    def _log_file(
        self, log: LogCheck, facts: Sequence[LedgerFact], other: str | None, young: bool
    ) -> None:
        assert log.stat is not None
        etag = log.stat.etag
        harvested = [
            f for f in facts if f.status == "done" and f.sha256 and etag and f.etag == etag
        ]
        if harvested:
            log.actual, log.source = harvested[0].sha256, "ledger"
            log.status = LogStatus.VERIFIED if log.actual == log.expected else LogStatus.ALTERED
            return
        never_seen = (
            self.ledger is not None
            and other is None
            and not facts
            and self.ledger.remembers(log.key)
        )
        in_flight = any(f.etag == etag and f.status in ("queued", "failed") for f in facts)
        log.unharvested = never_seen
        if (never_seen or in_flight) and young:
            log.status = LogStatus.PENDING
            return
        try:
            hashed = self.store.sha256(log.key, other)
        except CorruptObjectError as exc:
            log.status, log.source = LogStatus.ALTERED, "download"
            log.detail = f"it is no longer readable gzip ({exc})"
            return
        if hashed is None:
            log.status = LogStatus.MISSING
            return
        log.actual, log.source = hashed.sha256, "download"
        log.status = LogStatus.VERIFIED if log.actual == log.expected else LogStatus.ALTERED


def _span(start: datetime | None, end: datetime | None) -> str:
    def fmt(value: datetime) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC")

    if start is None and end is not None:
        return f"the time before {fmt(end)}"
    if start is not None and end is not None:
        return f"{fmt(start)} to {fmt(end)}"
    return "some time"
