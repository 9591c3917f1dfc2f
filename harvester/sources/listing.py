"""Listing that never loses an object: pure planners over list results and ledger rows.

The planners (:func:`plan_harvest`, :func:`plan_sweep`, :func:`plan_backfill`) take what a
listing returned and what the ledger holds, and decide; the thin I/O functions
(:func:`list_new_objects`, :func:`sweep`, :func:`backfill`) fetch those inputs through a
:class:`Lister` and a session. Call the I/O functions under the source's lock.

Why nothing is lost (for objects whose arrival delay is at most the lateness window W_l):
the watermark W only moves to object times of objects already listed, so W is never later
than the previous listing. An object not yet listed arrived after that listing, hence its
key time is later than (previous listing - W_l) >= W - W_l, and the next listing, which
starts at W - W_l, reaches it. Retries and requeues come from the ledger itself, so they
do not depend on the listing still reaching an old object. Objects later than the window
are the sweep's job: see :func:`plan_sweep`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from harvester.clock import Clock
from harvester.sources.layouts import ParsedKey, ScopeLocation, Skipped, classify
from harvester.sources.ledger import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRUNE_MARGIN,
    LedgerEntry,
    Status,
    WorkItem,
    WorkReason,
    advance_watermark,
    ensure_cursor,
    last_sweep,
    load_entries,
    mark_corrupt,
    mark_failed,
    mark_queued,
    normalize_etag,
    prune,
    record_sweep,
    retention_start,
)

if TYPE_CHECKING:
    from harvester.settings import Settings

PAGE_SIZE = 1000  # ListObjectsV2's maximum

# Skip reasons besides layouts.SkipReason, for keys that parse but are not this listing's.
NOT_A_LOG = "not-a-log"  # digests and Insights: another issue reads them
FOREIGN = "foreign"  # parses, but belongs to another account, region or cluster
FUTURE = "future-dated"  # stamped later than now + clock skew: taken when its time comes


# --- the Lister protocol --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListedObject:
    key: str
    etag: str  # without S3's quotes
    size: int
    last_modified: datetime  # aware UTC


@dataclass(frozen=True, slots=True)
class ListPage:
    objects: Sequence[ListedObject]
    prefixes: Sequence[str]  # CommonPrefixes, when a delimiter was given
    next_token: str | None  # None: this was the last page


class Lister(Protocol):
    """One ListObjectsV2 call on one bucket."""

    def list_page(
        self,
        *,
        prefix: str,
        start_after: str | None = None,
        delimiter: str | None = None,
        continuation_token: str | None = None,
        max_keys: int = PAGE_SIZE,
    ) -> ListPage: ...


def iter_objects(
    lister: Lister, *, prefix: str, start_after: str | None = None, page_size: int = PAGE_SIZE
) -> Iterator[ListedObject]:
    """Every object under ``prefix`` after ``start_after``, in key order, page by page.

    Lazy: a consumer that stops early saves the remaining pages.
    """
    token: str | None = None
    while True:
        page = lister.list_page(
            prefix=prefix,
            start_after=start_after if token is None else None,
            continuation_token=token,
            max_keys=page_size,
        )
        yield from page.objects
        if page.next_token is None:
            return
        token = page.next_token


def iter_prefixes(
    lister: Lister, *, prefix: str, delimiter: str = "/", page_size: int = PAGE_SIZE
) -> Iterator[str]:
    """The "folders" directly under ``prefix``."""
    token: str | None = None
    while True:
        page = lister.list_page(
            prefix=prefix, delimiter=delimiter, continuation_token=token, max_keys=page_size
        )
        yield from page.prefixes
        if page.next_token is None:
            return
        token = page.next_token


# --- policy and results ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListingPolicy:
    lateness_window: timedelta = timedelta(hours=1)
    first_harvest_lookback: timedelta = timedelta(hours=24)
    # Longer than the longest a worker may take on one object (its hard time limit).
    requeue_timeout: timedelta = timedelta(minutes=30)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # How far behind the listing's reach the ledger keeps completed rows.
    prune_margin: timedelta = DEFAULT_PRUNE_MARGIN
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW
    sweep_days: int = 2
    page_size: int = PAGE_SIZE
    sample_size: int = 10

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ListingPolicy:
        values: dict[str, Any] = {
            "lateness_window": settings.lateness_window,
            "first_harvest_lookback": settings.first_harvest_lookback,
            # A queued object is redone only once its task must be dead: well past the
            # task's hard time limit and the broker's redelivery of it.
            "requeue_timeout": max(settings.requeue_after, 3 * settings.task_time_limit),
        }
        return cls(**(values | overrides))


@dataclass(slots=True)
class SkipTally:
    """Keys a listing passed over, counted by reason, with a few samples to log."""

    sample_size: int = 10
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, key: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        kept = self.samples.setdefault(reason, [])
        if len(kept) < self.sample_size:
            kept.append(key)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class GiveUp:
    """An incomplete ledger row to close, and how."""

    entry: LedgerEntry
    status: Status  # FAILED (attempts exhausted) or CORRUPT (superseded by a new version)
    error: str


@dataclass(slots=True)
class HarvestPlan:
    scope: str
    watermark: datetime
    start_after: str
    listed: int = 0
    work: list[WorkItem] = field(default_factory=list)
    known: int = 0  # done or corrupt already
    in_flight: int = 0  # queued recently: a worker has it
    give_up: list[GiveUp] = field(default_factory=list)
    exhausted: list[LedgerEntry] = field(default_factory=list)  # failed for good: report them
    skipped: SkipTally = field(default_factory=SkipTally)


@dataclass(slots=True)
class SweepReport:
    """What a sweep found, and what it could not prove either way."""

    scope: str
    started_at: datetime
    previous_sweep: datetime | None
    start_after: str
    listed: int = 0
    known: int = 0  # in the ledger
    previously_seen: int = 0  # in the bucket at the previous sweep, which accounted for it
    found: list[WorkItem] = field(default_factory=list)  # never seen: queued by the sweep
    unknown: int = 0  # older than the ledger keeps, with no previous sweep to vouch for it
    unknown_samples: list[str] = field(default_factory=list)
    skipped: SkipTally = field(default_factory=SkipTally)

    @property
    def late(self) -> list[WorkItem]:
        """Found objects the regular listing had already passed: arrivals beyond the window."""
        return [item for item in self.found if item.reason is WorkReason.LATE]


@dataclass(slots=True)
class BackfillResult:
    objects: list[WorkItem] = field(default_factory=list)
    listed: int = 0
    skipped: SkipTally = field(default_factory=SkipTally)


# --- pure planners --------------------------------------------------------------------------


def listing_start(location: ScopeLocation, watermark: datetime, policy: ListingPolicy) -> str:
    """The StartAfter key of a scope's regular listing: the key for W - lateness window."""
    return location.start_after(watermark - policy.lateness_window)


def _log_object(
    obj: ListedObject,
    location: ScopeLocation,
    now: datetime | None,
    policy: ListingPolicy,
    skipped: SkipTally,
) -> ParsedKey | None:
    parsed = classify(obj.key, obj.size)
    if isinstance(parsed, Skipped):
        skipped.add(parsed.reason.value, obj.key)
        return None
    if not location.owns(parsed):
        skipped.add(FOREIGN if parsed.kind is location.object_kind else NOT_A_LOG, obj.key)
        return None
    # A key stamped in the future would drag the watermark past objects not yet delivered.
    if now is not None and parsed.time > now + policy.clock_skew:
        skipped.add(FUTURE, obj.key)
        return None
    return parsed


def _item(obj: ListedObject, parsed: ParsedKey, reason: WorkReason) -> WorkItem:
    return WorkItem(
        key=obj.key,
        etag=normalize_etag(obj.etag),
        scope=parsed.scope,
        object_time=parsed.time,
        last_modified=obj.last_modified,
        size=obj.size,
        reason=reason,
    )


def plan_harvest(
    listed: Iterable[ListedObject],
    entries: Iterable[LedgerEntry],
    *,
    location: ScopeLocation,
    watermark: datetime,
    now: datetime,
    policy: ListingPolicy,
) -> HarvestPlan:
    """Decide what one regular listing of a scope hands to workers.

    ``entries`` must hold the ledger rows of every listed key and every incomplete row of
    the scope (:func:`harvester.sources.ledger.load_entries`).
    """
    plan = HarvestPlan(
        scope=location.scope,
        watermark=watermark,
        start_after=listing_start(location, watermark, policy),
        skipped=SkipTally(policy.sample_size),
    )
    by_version: dict[tuple[str, str], LedgerEntry] = {}
    for row in entries:
        by_version[(row.key, row.etag)] = row
    known_keys = {key for key, _ in by_version}
    listed_etag: dict[str, str] = {}
    sizes: dict[tuple[str, str], int] = {}

    for obj in listed:
        plan.listed += 1
        parsed = _log_object(obj, location, now, policy, plan.skipped)
        if parsed is None:
            continue
        etag = normalize_etag(obj.etag)
        listed_etag[obj.key] = etag
        sizes[(obj.key, etag)] = obj.size
        entry = by_version.get((obj.key, etag))
        if entry is None:
            reason = WorkReason.CHANGED if obj.key in known_keys else WorkReason.NEW
            plan.work.append(_item(obj, parsed, reason))
        elif entry.status in (Status.DONE, Status.CORRUPT):
            plan.known += 1
        # Incomplete rows are decided below, listed or not.

    for entry in by_version.values():
        if entry.scope != location.scope or entry.status in (Status.DONE, Status.CORRUPT):
            continue
        current = listed_etag.get(entry.key)
        if current is not None and current != entry.etag:
            plan.give_up.append(
                GiveUp(entry, Status.CORRUPT, f"superseded by a new version (ETag {current})")
            )
        elif entry.status is Status.QUEUED:
            if now - entry.updated_at < policy.requeue_timeout:
                plan.in_flight += 1
            elif entry.attempts >= policy.max_attempts:
                plan.give_up.append(
                    GiveUp(
                        entry,
                        Status.FAILED,
                        f"gave up after {entry.attempts} attempts: no worker finished it "
                        "(killed, out of memory or over its time limit?)",
                    )
                )
            else:
                plan.work.append(_retry(entry, WorkReason.REQUEUE, sizes))
        elif entry.attempts < policy.max_attempts:
            plan.work.append(_retry(entry, WorkReason.RETRY, sizes))
        else:
            plan.exhausted.append(entry)
    return plan


def _retry(entry: LedgerEntry, reason: WorkReason, sizes: dict[tuple[str, str], int]) -> WorkItem:
    return WorkItem(
        key=entry.key,
        etag=entry.etag,
        scope=entry.scope,
        object_time=entry.object_time,
        last_modified=entry.last_modified,
        size=sizes.get((entry.key, entry.etag)),
        reason=reason,
    )


def sweep_start(location: ScopeLocation, now: datetime, policy: ListingPolicy) -> str:
    """StartAfter of a sweep: whole day folders from ``sweep_days`` days ago on.

    One paginated listing from there covers the same keys as relisting each day (or hour)
    folder, in fewer calls.
    """
    return location.day_start_after((now - timedelta(days=policy.sweep_days)).date())


def plan_sweep(
    listed: Iterable[ListedObject],
    entries: Iterable[LedgerEntry],
    *,
    location: ScopeLocation,
    watermark: datetime,
    previous_sweep: datetime | None,
    now: datetime,
    policy: ListingPolicy,
) -> SweepReport:
    """Classify every object of the last days that the ledger does not know.

    Not in the ledger, and:

    - its key time is at or after W - window: the regular listing's ground; the sweep
      queues it itself (reason NEW), so that "existed at the previous sweep" below always
      means "the previous sweep accounted for it".
    - it arrived (LastModified) after the previous sweep started, less the clock skew:
      ``prune`` keeps every row that arrived since the last sweep, so its absence proves
      it was never seen: found (LATE).
    - it was in the bucket at the previous sweep (and not future-dated then): that sweep
      queued, knew or reported it: previously seen.
    - no previous sweep is recorded: found if its key time is inside what the ledger still
      keeps (``retention_start``: about W - window - prune margin); otherwise it cannot be
      proven either way: unknown, counted with samples for the caller to log.
    """
    report = SweepReport(
        scope=location.scope,
        started_at=now,
        previous_sweep=previous_sweep,
        start_after=sweep_start(location, now, policy),
        skipped=SkipTally(policy.sample_size),
    )
    versions = {(entry.key, entry.etag) for entry in entries}
    reach = watermark - policy.lateness_window
    horizon = retention_start(
        watermark, lateness_window=policy.lateness_window, margin=policy.prune_margin
    )
    for obj in listed:
        report.listed += 1
        parsed = _log_object(obj, location, now, policy, report.skipped)
        if parsed is None:
            continue
        if (obj.key, normalize_etag(obj.etag)) in versions:
            report.known += 1
        elif parsed.time >= reach:
            report.found.append(_item(obj, parsed, WorkReason.NEW))
        elif previous_sweep is not None:
            seen_then = (
                obj.last_modified <= previous_sweep - policy.clock_skew
                and parsed.time <= previous_sweep + policy.clock_skew
            )
            if seen_then:
                report.previously_seen += 1
            else:
                report.found.append(_item(obj, parsed, WorkReason.LATE))
        elif parsed.time >= horizon:
            report.found.append(_item(obj, parsed, WorkReason.LATE))
        else:
            report.unknown += 1
            if len(report.unknown_samples) < policy.sample_size:
                report.unknown_samples.append(obj.key)
    return report


def plan_backfill(
    listed: Iterable[ListedObject],
    *,
    location: ScopeLocation,
    since: datetime,
    until: datetime,
    sample_size: int = 10,
) -> BackfillResult:
    """Every log object with a key time in [since, until], done or not.

    Stops consuming ``listed`` at the first key past ``until``, so no page after it is read.
    """
    result = BackfillResult(skipped=SkipTally(sample_size))
    policy = ListingPolicy(sample_size=sample_size)
    for obj in listed:
        result.listed += 1
        parsed = _log_object(obj, location, None, policy, result.skipped)
        if parsed is None:
            continue
        if parsed.folder_time > until:
            break
        if since <= parsed.time <= until:
            result.objects.append(_item(obj, parsed, WorkReason.BACKFILL))
    return result


# --- the thin I/O layer ---------------------------------------------------------------------


def list_new_objects(
    session: Session,
    lister: Lister,
    *,
    source_id: int,
    location: ScopeLocation,
    policy: ListingPolicy,
    clock: Clock,
) -> HarvestPlan:
    """One harvest cycle's listing of one scope: advance W, prune, list once, plan.

    Closes the rows the plan gives up on; the caller marks ``plan.work`` queued with
    :func:`~harvester.sources.ledger.mark_queued`, commits, then dispatches.
    """
    now = clock()
    scope = location.scope
    ensure_cursor(
        session, source_id=source_id, scope=scope, now=now, lookback=policy.first_harvest_lookback
    )
    watermark = advance_watermark(
        session, source_id=source_id, scope=scope, now=now, max_attempts=policy.max_attempts
    )
    prune(
        session,
        source_id=source_id,
        scope=scope,
        lateness_window=policy.lateness_window,
        margin=policy.prune_margin,
        clock_skew=policy.clock_skew,
    )
    listed = list(
        iter_objects(
            lister,
            prefix=location.prefix,
            start_after=listing_start(location, watermark, policy),
            page_size=policy.page_size,
        )
    )
    entries = load_entries(
        session, source_id=source_id, scope=scope, keys=[obj.key for obj in listed]
    )
    plan = plan_harvest(
        listed, entries, location=location, watermark=watermark, now=now, policy=policy
    )
    for give_up in plan.give_up:
        close = mark_corrupt if give_up.status is Status.CORRUPT else mark_failed
        close(
            session,
            source_id=source_id,
            key=give_up.entry.key,
            etag=give_up.entry.etag,
            error=give_up.error,
            now=now,
            object_time=give_up.entry.object_time,
            scope=give_up.entry.scope,
        )
        if give_up.status is Status.FAILED:
            plan.exhausted.append(replace(give_up.entry, status=Status.FAILED, error=give_up.error))
    return plan


def sweep(
    session: Session,
    lister: Lister,
    *,
    source_id: int,
    location: ScopeLocation,
    policy: ListingPolicy,
    clock: Clock,
) -> SweepReport:
    """Relist the last ``policy.sweep_days`` days of a scope and pick up what was missed.

    Unlike the regular listing, the sweep queues what it found (``mark_queued``) and then
    records its own start, in the caller's transaction: recording the start first would
    turn what it found into "previously seen" if the process died in between. The caller
    commits, dispatches ``report.found``, and logs and counts ``report.unknown``. Run it
    every few hours, more often than ``policy.prune_margin``.
    """
    started = clock().astimezone(UTC)
    scope = location.scope
    watermark = ensure_cursor(
        session,
        source_id=source_id,
        scope=scope,
        now=started,
        lookback=policy.first_harvest_lookback,
    )
    previous = last_sweep(session, source_id=source_id, scope=scope)
    listed = list(
        iter_objects(
            lister,
            prefix=location.prefix,
            start_after=sweep_start(location, started, policy),
            page_size=policy.page_size,
        )
    )
    entries = load_entries(
        session, source_id=source_id, scope=scope, keys=[obj.key for obj in listed]
    )
    report = plan_sweep(
        listed,
        entries,
        location=location,
        watermark=watermark,
        previous_sweep=previous,
        now=started,
        policy=policy,
    )
    mark_queued(session, source_id=source_id, objects=report.found, now=started)
    record_sweep(session, source_id=source_id, scope=scope, started_at=started, now=started)
    return report


def backfill(
    lister: Lister,
    *,
    locations: Iterable[ScopeLocation],
    since: datetime,
    until: datetime,
    page_size: int = PAGE_SIZE,
    sample_size: int = 10,
) -> BackfillResult:
    """Every log object of a source's scopes with a key time in [since, until].

    Includes objects already done: the caller re-harvests them (``mark_queued`` restarts
    their attempt count) and scoring de-duplicates by event id.
    """
    total = BackfillResult(skipped=SkipTally(sample_size))
    for location in locations:
        listed = iter_objects(
            lister,
            prefix=location.prefix,
            start_after=location.start_after(since),
            page_size=page_size,
        )
        part = plan_backfill(
            listed, location=location, since=since, until=until, sample_size=sample_size
        )
        total.objects.extend(part.objects)
        total.listed += part.listed
        for reason, count in part.skipped.counts.items():
            total.skipped.counts[reason] = total.skipped.counts.get(reason, 0) + count
            kept = total.skipped.samples.setdefault(reason, [])
            kept.extend(part.skipped.samples.get(reason, [])[: sample_size - len(kept)])
    return total
