"""Log file integrity validation, as the harvest runs it and as ``harvester verify`` runs it.

:func:`verify_new_digests` is the harvest's entry point, called once per CloudTrail source
run (under the source's lease, after its logs were listed): it lists each region's digest
folder from where the last run got to, verifies what is new (and what was left pending),
records each digest's verification, stores integrity anomalies, and returns counts plus the
log files a digest names that were never harvested, for the caller to queue.

:func:`verify_digests` verifies a given list of digests without a database (the offline
command), and :func:`find_digests` lists a bucket's digests in a time range.

Wiring it into a CloudTrail source's run, after the run's log objects are queued::

    keys = CloudTrailPublicKeys(
        lambda region: rt.aws.client(info.chain, "cloudtrail", region),
        cache=process_key_cache,  # one KeyCache per process: the keys are public
    )
    with rt.sessions.begin() as session:
        run = verify_new_digests(
            session, lister=lister, s3=client, source_id=source_id, info=info,
            clock=rt.clock, key_provider=keys, policy=IntegrityPolicy.from_settings(rt.settings),
        )
        mark_queued(session, source_id=source_id, objects=run.unharvested, now=now)
    # then enqueue run.unharvested like plan.work, and count run.summary() in metrics

The harvesting role needs ``cloudtrail:ListPublicKeys`` (without it every digest stays
``error`` with the AWS explanation, and nothing is raised as tampering).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.detect.model import Anomaly
from harvester.detect.repository import save_anomalies
from harvester.integrity import repository as repo
from harvester.integrity.anomalies import OverdueDigest, anomalies_for, overdue_anomaly
from harvester.integrity.keys import PublicKeyProvider
from harvester.integrity.stores import S3TrailStore
from harvester.integrity.verify import (
    ChainId,
    DigestCheck,
    DigestStatus,
    LedgerView,
    LogStatus,
    Verifier,
    VerifyPolicy,
)
from harvester.sources.discovery import discover_accounts, discover_regions
from harvester.sources.layouts import ObjectKind, ParsedKey, classify, cloudtrail_root
from harvester.sources.ledger import DEFAULT_PRUNE_MARGIN, WorkItem, WorkReason
from harvester.sources.listing import Lister, iter_objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from harvester.aws.identity import SourceInfo
    from harvester.settings import Settings

__all__ = [
    "DIGEST_FOLDER",
    "IntegrityPolicy",
    "IntegrityRunResult",
    "digest_folders",
    "find_digests",
    "find_overdue",
    "verify_digests",
    "verify_new_digests",
]

DIGEST_FOLDER = "CloudTrail-Digest"
# A log file stamped just after a digest's end may still be in it (stamps have minute
# precision, digest ends seconds); only logs later than this count as uncovered.
_COVER_SLACK = timedelta(minutes=5)
DIGEST_PERIOD = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class IntegrityPolicy:
    first_lookback: timedelta = timedelta(hours=24)
    # Digests are relisted this far behind the newest verified, for late arrivals.
    relist_window: timedelta = timedelta(hours=1)
    pending_timeout: timedelta = timedelta(hours=6)
    # How late a digest may be (past the hour after the logs it covers) before it is missing.
    overdue_grace: timedelta = timedelta(hours=2)
    max_attempts: int = 5
    clock_skew: timedelta = timedelta(minutes=15)
    # A region is listed again from an hour after its newest digest, less this.
    list_early: timedelta = timedelta(minutes=10)
    # The harvest ledger's retention, to know when a missing ledger row proves nothing.
    lateness_window: timedelta = timedelta(hours=1)
    prune_margin: timedelta = DEFAULT_PRUNE_MARGIN

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> IntegrityPolicy:
        return cls(
            first_lookback=settings.first_harvest_lookback,
            lateness_window=settings.lateness_window,
            **overrides,
        )

    @property
    def verify_policy(self) -> VerifyPolicy:
        return VerifyPolicy(pending_timeout=self.pending_timeout)


@dataclass
class IntegrityRunResult:
    """What one run verified. ``unharvested`` are log files to queue for harvest."""

    source_id: int
    regions: int = 0  # regions listed this run (each about once an hour, when a digest is due)
    digests_listed: int = 0
    digests_verified: int = 0  # verified ok
    digests_failed: int = 0
    digests_pending: int = 0
    digests_error: int = 0
    log_files_verified: int = 0
    log_files_missing: int = 0
    log_files_altered: int = 0
    log_files_pending: int = 0
    log_files_downloaded: int = 0  # hashed here because the ledger had no hash for them
    bytes_downloaded: int = 0
    unharvested: list[WorkItem] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks: list[DigestCheck] = field(default_factory=list)

    @property
    def unharvested_keys(self) -> list[str]:
        return [item.key for item in self.unharvested]

    def add(self, check: DigestCheck) -> None:
        self.checks.append(check)
        status = check.status
        if status is DigestStatus.OK:
            self.digests_verified += 1
        elif status is DigestStatus.FAILED:
            self.digests_failed += 1
        elif status is DigestStatus.PENDING:
            self.digests_pending += 1
        else:
            self.digests_error += 1
            self.errors.append(f"{check.location}: {check.error}")
        self.log_files_verified += check.count(LogStatus.VERIFIED)
        self.log_files_missing += check.count(LogStatus.MISSING)
        self.log_files_altered += check.count(LogStatus.ALTERED)
        self.log_files_pending += check.count(LogStatus.PENDING)

    def summary(self) -> dict[str, object]:
        """Counts for a task result or a log line (no keys, no check objects)."""
        return {
            "source_id": self.source_id,
            "regions": self.regions,
            "digests_listed": self.digests_listed,
            "digests_verified": self.digests_verified,
            "digests_failed": self.digests_failed,
            "digests_pending": self.digests_pending,
            "digests_error": self.digests_error,
            "log_files_verified": self.log_files_verified,
            "log_files_missing": self.log_files_missing,
            "log_files_altered": self.log_files_altered,
            "log_files_pending": self.log_files_pending,
            "log_files_unharvested": len(self.unharvested),
            "log_files_downloaded": self.log_files_downloaded,
            "anomalies": len(self.anomalies),
        }


# --- listing digests --------------------------------------------------------------------------


def _region_folder(root: str, region: str) -> str:
    return f"{root}{DIGEST_FOLDER}/{region}/"


def digest_folders(lister: Lister, *, prefix: str) -> list[str]:
    """The ``…/CloudTrail-Digest/<region>/`` folders at or under ``prefix`` (or ``prefix``
    itself when it already points inside one)."""
    if f"/{DIGEST_FOLDER}/" in f"/{prefix}":
        return [prefix]
    found: list[str] = []
    for account in discover_accounts(lister, prefix=prefix):
        if not (account.root.startswith(prefix) or prefix.startswith(account.root)):
            continue
        for region in discover_regions(lister, root=account.root, product=DIGEST_FOLDER):
            folder = _region_folder(account.root, region)
            if folder.startswith(prefix) or prefix.startswith(folder):
                found.append(folder)
    return found


def _digest_key(
    key: str, *, account: str | None = None, region: str | None = None
) -> ParsedKey | None:
    parsed = classify(key)
    if not isinstance(parsed, ParsedKey) or parsed.kind is not ObjectKind.DIGEST:
        return None
    if account is not None and parsed.account != account:
        return None
    if region is not None and parsed.region != region:
        return None
    return parsed


def find_digests(
    lister: Lister, *, folders: Iterable[str], since: datetime, until: datetime
) -> list[tuple[str, ParsedKey]]:
    """Digest keys delivered in (since, until], oldest first.

    A digest is keyed by its delivery (the end of the hour it covers), so the digest of
    ``until``'s hour is delivered within the hour after it: the range reaches one period on.
    """
    end = until + DIGEST_PERIOD
    found: list[tuple[str, ParsedKey]] = []
    for folder in folders:
        region_level = folder.rstrip("/").split("/")[-2:-1] == [DIGEST_FOLDER]
        start_after = f"{folder}{since:%Y/%m/%d}/" if region_level else None
        for obj in iter_objects(lister, prefix=folder, start_after=start_after):
            parsed = _digest_key(obj.key)
            if parsed is None:
                continue
            # Day folders sort in time order; within one, trails interleave.
            if region_level and parsed.time.date() > end.date():
                break
            if since < parsed.time <= end:
                found.append((obj.key, parsed))
    found.sort(key=lambda item: (item[1].time, item[0]))
    return found


# --- verifying --------------------------------------------------------------------------------


def verify_digests(
    digests: Sequence[tuple[str, ParsedKey]], *, verifier: Verifier
) -> list[DigestCheck]:
    """Verify digests oldest first, so each one's predecessor is known when it comes."""
    ordered = sorted(digests, key=lambda item: (item[1].time, item[0]))
    return [verifier.verify(key, parsed) for key, parsed in ordered]


FirstLogAfter = Callable[[ChainId, datetime], "tuple[str, datetime] | None"]


def find_overdue(
    last: Iterable[tuple[ChainId, str, datetime]],
    *,
    first_log_after: FirstLogAfter,
    bucket: str,
    now: datetime,
    grace: timedelta,
) -> list[OverdueDigest]:
    """Chains whose digests stopped while log files kept arriving.

    ``last`` holds the last regular digest (chain, key, end) of each chain. Only the most
    recent chain of an account and region is judged: a trail replaced by another leaves an
    old chain behind that is not overdue. A log file delivered after a chain's last digest
    is covered by a digest delivered within the next hour; when that is over ``grace`` late,
    the digest is missing.
    """
    newest: dict[tuple[str, str], tuple[ChainId, str, datetime]] = {}
    for chain, key, end in last:
        place = (chain.account, chain.region)
        if place not in newest or end > newest[place][2]:
            newest[place] = (chain, key, end)
    found: list[OverdueDigest] = []
    for chain, key, end in newest.values():
        if end + DIGEST_PERIOD + grace > now:
            continue
        log = first_log_after(chain, end + _COVER_SLACK)
        if log is None:
            continue
        log_key, log_time = log
        if log_time + DIGEST_PERIOD + grace <= now:
            found.append(OverdueDigest(bucket, chain, key, end, log_key, log_time))
    return found


def _unharvested(checks: Iterable[DigestCheck], account: str) -> list[WorkItem]:
    items: dict[tuple[str, str], WorkItem] = {}
    for check in checks:
        for log in check.logs:
            if not log.unharvested or log.stat is None:
                continue
            parsed = classify(log.key)
            if (
                not isinstance(parsed, ParsedKey)
                or parsed.kind is not ObjectKind.LOG
                or parsed.account != account
            ):
                continue
            items[(log.key, log.stat.etag)] = WorkItem(
                key=log.key,
                etag=log.stat.etag,
                scope=parsed.scope,
                object_time=parsed.time,
                last_modified=log.stat.last_modified,
                size=log.stat.size,
                reason=WorkReason.LATE,
            )
    return sorted(items.values(), key=lambda item: (item.object_time, item.key))


def verify_new_digests(
    session: Session,
    *,
    lister: Lister,
    s3: S3Client,
    source_id: int,
    info: SourceInfo,
    clock: Clock,
    key_provider: PublicKeyProvider | None,
    policy: IntegrityPolicy | None = None,
    ledger: LedgerView | None = None,
) -> IntegrityRunResult:
    """Verify a CloudTrail source's digests delivered since the last run; see the module doc.

    Idempotent: a digest verified ok or failed is never fetched again; pending and errored
    ones are tried again. Works in the caller's session and does not commit. AWS errors on a
    digest are recorded on it (status ``error``); errors while listing propagate.
    """
    if info.kind != "cloudtrail":
        raise ValueError(f"source {source_id} is an EKS cluster: only CloudTrail has digests")
    policy = policy or IntegrityPolicy()
    now = clock().astimezone(UTC)
    result = IntegrityRunResult(source_id)
    root = cloudtrail_root(info.prefix, account_id=info.account_id, org_id=info.organization_id)
    store = S3TrailStore(s3, info.bucket)
    verifier = Verifier(
        store=store,
        keys=key_provider,
        clock=clock,
        memory=repo.DbDigestMemory(session, source_id=source_id),
        ledger=ledger
        or repo.DbLedgerView(
            session,
            source_id=source_id,
            lateness_window=policy.lateness_window,
            prune_margin=policy.prune_margin,
        ),
        policy=policy.verify_policy,
    )
    marks = repo.region_watermarks(session, source_id=source_id)
    try:
        todo: dict[str, ParsedKey] = {}
        due_regions, discovered = _due_regions(
            lister,
            root=root,
            marks=marks,
            now=now,
            policy=policy,
            discovered_at=repo.digest_discovery_time(session, source_id=source_id),
        )
        if discovered:
            repo.record_digest_discovery(session, source_id=source_id, now=now)
        for region in due_regions:
            result.regions += 1
            listed = _list_new(lister, root=root, region=region, info=info, now=now,
                               mark=marks.get(region), policy=policy)  # fmt: skip
            result.digests_listed += len(listed)
            done = repo.final_keys(session, source_id=source_id, keys=listed)
            todo.update((key, parsed) for key, parsed in listed.items() if key not in done)
        for key in repo.unfinished_keys(
            session, source_id=source_id, max_attempts=policy.max_attempts
        ):
            parsed = _digest_key(key)
            if parsed is not None:
                todo.setdefault(key, parsed)
        ordered = sorted(todo.items(), key=lambda item: (item[1].time, item[0]))
        store.prefetch([key for key, _ in ordered])
        for key, parsed in ordered:
            check = verifier.verify(key, parsed)
            repo.record_check(session, source_id=source_id, check=check, now=now)
            result.add(check)
    finally:
        store.close()
    session.flush()

    def first_log_after(chain: ChainId, after: datetime) -> tuple[str, datetime] | None:
        return repo.first_log_after(session, source_id=source_id, scope=chain.region, after=after)

    regions = set(marks) | {check.parsed.region or "" for check in result.checks}
    last = [
        (item.chain, item.key, item.end)
        for region in sorted(regions)
        for item in repo.last_digests(session, source_id=source_id, region=region)
    ]
    overdue = find_overdue(
        last,
        first_log_after=first_log_after,
        bucket=info.bucket,
        now=now,
        grace=policy.overdue_grace,
    )
    anomalies = [a for check in result.checks for a in anomalies_for(check)]
    anomalies.extend(overdue_anomaly(o, location=store.location(o.last_key)) for o in overdue)
    result.anomalies = save_anomalies(session, anomalies, clock=clock)
    result.unharvested = _unharvested(result.checks, info.account_id)
    result.log_files_downloaded = store.downloads
    result.bytes_downloaded = store.downloaded_bytes
    return result


def _due_regions(
    lister: Lister,
    *,
    root: str,
    marks: Mapping[str, datetime],
    now: datetime,
    policy: IntegrityPolicy,
    discovered_at: datetime | None = None,
) -> tuple[list[str], bool]:
    """The regions whose next digest may have arrived (one listing per region and hour), and
    whether the digest folder was listed to find them.

    CloudTrail delivers a region's digest hourly, so a region whose newest digest is less
    than an hour old (less ``policy.list_early``) has nothing new to list; a harvest that
    runs every few minutes then costs no request here between deliveries. Regions are
    discovered again whenever one is due, so a new region waits an hour at most. A trail
    with no digest yet (validation off, or just turned on) is looked for once an hour too,
    from ``discovered_at``, not at every harvest.
    """

    def due(region: str) -> bool:
        mark = marks.get(region)
        return mark is None or now >= mark + DIGEST_PERIOD - policy.list_early

    if marks and not any(due(region) for region in marks):
        return [], False
    recently = discovered_at is not None and now < discovered_at + DIGEST_PERIOD - policy.list_early
    if not marks and recently:
        return [], False
    found = discover_regions(lister, root=root, product=DIGEST_FOLDER)
    return [r for r in found if due(r)], True


def _list_new(
    lister: Lister,
    *,
    root: str,
    region: str,
    info: SourceInfo,
    now: datetime,
    mark: datetime | None,
    policy: IntegrityPolicy,
) -> dict[str, ParsedKey]:
    """A region's digests delivered since its watermark (less the relist window)."""
    folder = _region_folder(root, region)
    reach = (mark if mark is not None else now - policy.first_lookback) - policy.relist_window
    listed: dict[str, ParsedKey] = {}
    # Within a day folder keys sort by trail name before time, so the listing starts at the
    # day and filters by time.
    for obj in iter_objects(lister, prefix=folder, start_after=f"{folder}{reach:%Y/%m/%d}/"):
        parsed = _digest_key(obj.key, account=info.account_id, region=region)
        if parsed is None or parsed.time < reach or parsed.time > now + policy.clock_skew:
            continue
        listed[obj.key] = parsed
    return listed
