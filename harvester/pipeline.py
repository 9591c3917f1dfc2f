"""The harvest engine: dispatch, list a source, fetch and parse an object, score a batch.

Every function takes the process's :class:`~harvester.runtime.Runtime` and callables for
what comes next (enqueue a source, enqueue objects, emit a batch), so the same code runs in
Celery tasks, in ``harvester run`` (one process, no broker) and in tests.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload

from harvester import metrics
from harvester.aws.errors import AwsError, NoSuchKey, ObjectChanged, sanitize
from harvester.aws.identity import SourceInfo, source_info_from_row
from harvester.aws.s3 import open_object
from harvester.batches import BatchBuilder, decode_batch
from harvester.correlation import CorrelationRun, correlate_marked
from harvester.db.models import Cursor, ProcessedObject, Source
from harvester.detect.repository import StoreSummary, score_and_store
from harvester.detect.state import ANONYMOUS
from harvester.integrity.keys import CloudTrailPublicKeys
from harvester.integrity.service import IntegrityPolicy, IntegrityRunResult, verify_new_digests
from harvester.locks import source_lease_key
from harvester.logs import log_context
from harvester.parse import CorruptObjectError, ParseStats, parse_object
from harvester.runtime import Runtime
from harvester.scheduling import due_sources, mark_scheduled
from harvester.silence import SilencePolicy, log_folder, silence_reason
from harvester.sources.discovery import discover_regions
from harvester.sources.layouts import ScopeLocation, cloudtrail_root, cloudtrail_scope, eks_scope
from harvester.sources.ledger import (
    WorkItem,
    ensure_cursor,
    harvest_scopes,
    last_sweep,
    mark_corrupt,
    mark_done,
    mark_failed,
    mark_queued,
)
from harvester.sources.listing import ListingPolicy, list_new_objects, sweep
from harvester.sources.listing import backfill as list_backfill
from harvester.sources.s3lister import S3Lister

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# Small objects travel together: one task per group keeps the per-task overhead off the
# thousands of tiny CloudTrail files a quiet region delivers.
GROUP_MAX_OBJECTS = 20
GROUP_MAX_BYTES = 2 << 20

# Sources are sent together: one broker connection for a whole dispatch tick.
EnqueueSources = Callable[[Sequence[tuple[int, timedelta]]], None]
EnqueueObjects = Callable[[int, Sequence[tuple[str, str]]], None]
EmitBatch = Callable[[bytes, int], None]


@dataclass(frozen=True)
class DispatchResult:
    due: int
    dispatched: int
    busy: int


def dispatch_due(rt: Runtime, *, enqueue: EnqueueSources, limit: int = 100_000) -> DispatchResult:
    """Enqueue a harvest of every source whose slot has come and whose lease is free."""
    now = rt.clock()
    with rt.sessions.begin() as session:
        due = due_sources(session, now=now, default_cadence=rt.settings.cadence, limit=limit)
        # One round trip for all leases: a source still being harvested is not sent again.
        busy_flags = rt.leases.busy([source_lease_key(item.id) for item in due])
        mark_scheduled(session, due)
    free = [item for item, busy in zip(due, busy_flags, strict=True) if not busy]
    # Enqueued after the commit: a failed commit must not leave a sent task behind.
    if free:
        enqueue([(item.id, item.cadence) for item in free])
    return DispatchResult(due=len(due), dispatched=len(free), busy=len(due) - len(free))


# --- a source ---------------------------------------------------------------------------------


@dataclass
class SourceRunResult:
    source_id: int
    status: str  # ok | busy | degraded | disabled | missing
    kind: str | None = None  # cloudtrail | eks, once the source is loaded
    objects: int = 0
    scopes: int = 0
    listed: int = 0
    skipped: int = 0
    exhausted: int = 0
    error: str | None = None
    # Why the source is silent (harvester.silence): listed fine, but its logs stopped.
    silent: str | None = None

    def summary(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, 0) or k == "status"}


def load_source(session: Session, source_id: int) -> Source | None:
    return session.scalar(
        select(Source)
        .where(Source.id == source_id)
        .options(selectinload(Source.account), selectinload(Source.role))
    )


DISCOVERY_SCOPE = "meta:regions"
# Regions are rediscovered this often; in between, the regions already known are listed, so
# a steady cycle costs one LIST per region and nothing more.
REDISCOVER_AFTER = timedelta(hours=1)
# Whole day folders are relisted this often, to find objects later than the lateness window.
SWEEP_EVERY = timedelta(hours=3)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def _locations(
    rt: Runtime, *, source_id: int, info: SourceInfo, lister: S3Lister
) -> list[ScopeLocation]:
    if info.kind == "eks":
        assert info.cluster_name is not None
        return [eks_scope(info.prefix, account_id=info.account_id, cluster=info.cluster_name)]
    now = rt.clock()
    with rt.sessions.begin() as session:
        marker = session.scalar(
            select(Cursor).where(Cursor.source_id == source_id, Cursor.scope == DISCOVERY_SCOPE)
        )
        regions: list[str] = []
        if marker is not None and now - marker.updated_at < REDISCOVER_AFTER:
            regions = [
                r for r in harvest_scopes(session, source_id=source_id) if _REGION.fullmatch(r)
            ]
        # No known region yet (a new source, or a run that died before its first listing):
        # discover, whatever the marker says.
        if not regions:
            root = cloudtrail_root(
                info.prefix, account_id=info.account_id, org_id=info.organization_id
            )
            regions = discover_regions(lister, root=root)
            # Every region found gets its cursor now, with the marker: a run that dies after
            # listing some of them must not leave the others unknown until rediscovery.
            for region in regions:
                ensure_cursor(
                    session,
                    source_id=source_id,
                    scope=region,
                    now=now,
                    lookback=rt.settings.first_harvest_lookback,
                )
            if marker is None:
                session.add(Cursor(source_id=source_id, scope=DISCOVERY_SCOPE, updated_at=now))
            else:
                marker.updated_at = now
    return [
        cloudtrail_scope(
            info.prefix, account_id=info.account_id, region=region, org_id=info.organization_id
        )
        for region in regions
    ]


def group_objects(work: Sequence[WorkItem]) -> list[list[WorkItem]]:
    """Batch small objects together; a large one goes alone."""
    groups: list[list[WorkItem]] = []
    current: list[WorkItem] = []
    size = 0
    for item in work:
        item_size = item.size or GROUP_MAX_BYTES
        if current and (len(current) >= GROUP_MAX_OBJECTS or size + item_size > GROUP_MAX_BYTES):
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        groups.append(current)
    return groups


def send_objects(
    rt: Runtime, *, source_id: int, items: Sequence[WorkItem], enqueue: EnqueueObjects
) -> None:
    """Hand queued objects to workers in groups.

    If the broker goes away midway, what was not sent is marked failed (retried by the next
    cycle, a bounded number of times) instead of sitting as "queued" until the requeue
    timeout: a Redis restart delays those objects by one cadence, never by half an hour.
    """
    groups = group_objects(items)
    for index, group in enumerate(groups):
        try:
            enqueue(source_id, [(item.key, item.etag) for item in group])
        except Exception as exc:
            unsent = [item for rest in groups[index:] for item in rest]
            with rt.sessions.begin() as session:
                for item in unsent:
                    mark_failed(
                        session,
                        source_id=source_id,
                        key=item.key,
                        etag=item.etag,
                        error=f"could not be queued: {exc}",
                        now=rt.clock(),
                        object_time=item.object_time,
                        scope=item.scope,
                    )
            raise


def harvest_source(
    rt: Runtime, *, source_id: int, enqueue: EnqueueObjects, lease_ttl: timedelta
) -> SourceRunResult:
    """List what is new in every scope of a source, record it queued, hand it to workers.

    Holds the source's lease for the duration, so two runs of one source never overlap.
    Permanent AWS errors degrade the source's health with the explanation; transient ones
    propagate for the caller to retry.
    """
    lease = rt.leases.lease(source_lease_key(source_id), lease_ttl)
    if not lease.acquire():
        return SourceRunResult(source_id, "busy")
    try:
        with log_context(source_id=source_id):
            return _harvest_source(rt, source_id=source_id, enqueue=enqueue)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        # A bug or a configuration nothing foresaw fails this source, never the cycle, the
        # dispatch or the process: the next sources are harvested, and this one says why.
        log.exception("source %s: harvest failed on an unexpected error", source_id)
        return source_failed(rt, source_id=source_id, reason=unexpected_reason(exc))
    finally:
        lease.release()


# AWS, the database, Redis and the network: their errors are the caller's to retry (a task's
# retry policy) or report; anything else raised while harvesting one source is its failure.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    AwsError,
    DBAPIError,
    RedisError,
    ConnectionError,
    TimeoutError,
)


def unexpected_reason(exc: BaseException) -> str:
    """A health reason for an error nobody converted: its type and its (sanitized) text."""
    return f"unexpected error: {type(exc).__name__}: {sanitize(str(exc))[:500]}"


def source_failed(rt: Runtime, *, source_id: int, reason: str) -> SourceRunResult:
    """Record a source run that failed as a whole: degraded with ``reason``, counted."""
    with rt.sessions.begin() as session:
        source = session.get(Source, source_id)
        kind = source.kind if source is not None else None
    metrics.record_source_error(kind)
    result = SourceRunResult(source_id, "degraded", kind=kind, error=reason)
    _record_run(rt, source_id=source_id, result=result, now=rt.clock())
    return result


def mark_degraded(rt: Runtime, *, source_id: int, reason: str) -> None:
    """Set a source's health to degraded with ``reason`` (a task that gave up, say)."""
    with rt.sessions.begin() as session:
        source = session.get(Source, source_id)
        if source is not None:
            source.health, source.health_reason = "degraded", reason


def _harvest_source(rt: Runtime, *, source_id: int, enqueue: EnqueueObjects) -> SourceRunResult:
    now = rt.clock()
    with rt.sessions.begin() as session:
        source = load_source(session, source_id)
        if source is None:
            return SourceRunResult(source_id, "missing")
        if not source.enabled or not source.account.enabled:
            return SourceRunResult(source_id, "disabled")
        info = source_info_from_row(
            source, secret_box=rt.box, default_external_id=rt.settings.external_id
        )
    result = SourceRunResult(source_id, "ok", kind=info.kind)
    policy = ListingPolicy.from_settings(rt.settings)
    try:
        lister = S3Lister(rt.aws.s3(info.chain, region=info.region), info.bucket)
        locations = _locations(rt, source_id=source_id, info=info, lister=lister)
        for location in locations:
            with rt.sessions.begin() as session:
                plan = list_new_objects(
                    session,
                    lister,
                    source_id=source_id,
                    location=location,
                    policy=policy,
                    clock=rt.clock,
                )
                mark_queued(session, source_id=source_id, objects=plan.work, now=now)
            result.scopes += 1
            result.listed += plan.listed
            result.skipped += plan.skipped.total
            result.exhausted += len(plan.exhausted)
            result.objects += len(plan.work)
            if plan.skipped.total:
                log.info(
                    "source %s scope %r: skipped %d keys %s",
                    source_id,
                    plan.scope,
                    plan.skipped.total,
                    dict(plan.skipped.counts),
                )
            for entry in plan.exhausted:
                log.warning(
                    "source %s: giving up on %s after repeated failures: %s",
                    source_id,
                    entry.key,
                    entry.error,
                )
            send_objects(rt, source_id=source_id, items=plan.work, enqueue=enqueue)
            _maybe_sweep(rt, source_id=source_id, location=location, lister=lister, enqueue=enqueue)
        if info.kind == "cloudtrail":
            _verify_digests(rt, source_id=source_id, info=info, lister=lister, enqueue=enqueue)
    except AwsError as exc:
        if exc.retryable:
            raise
        result.status, result.error = "degraded", f"{exc} — {exc.remedy}"
        log.warning("source %s: degraded: %s", source_id, result.error)
    _record_run(rt, source_id=source_id, result=result, now=now, folder=log_folder(info))
    return result


def _maybe_sweep(
    rt: Runtime,
    *,
    source_id: int,
    location: ScopeLocation,
    lister: S3Lister,
    enqueue: EnqueueObjects,
) -> None:
    """Every few hours, relist whole recent folders for objects later than the window."""
    now = rt.clock()
    with rt.sessions.begin() as session:
        previous = last_sweep(session, source_id=source_id, scope=location.scope)
        if previous is not None and now - previous < SWEEP_EVERY:
            return
        report = sweep(
            session,
            lister,
            source_id=source_id,
            location=location,
            policy=ListingPolicy.from_settings(rt.settings),
            clock=rt.clock,
        )
    send_objects(rt, source_id=source_id, items=report.found, enqueue=enqueue)
    if report.late:
        log.warning(
            "source %s scope %r: %d object(s) arrived later than the lateness window; queued",
            source_id,
            location.scope,
            len(report.late),
        )
    if report.unknown:
        # Older than the ledger keeps and never vouched for by a sweep: cannot be proven
        # either way. Said loudly, never dropped in silence; digests settle it.
        log.warning(
            "source %s scope %r: %d object(s) could not be proven harvested, e.g. %s",
            source_id,
            location.scope,
            report.unknown,
            ", ".join(report.unknown_samples[:3]),
        )


def _verify_digests(
    rt: Runtime, *, source_id: int, info: SourceInfo, lister: S3Lister, enqueue: EnqueueObjects
) -> IntegrityRunResult | None:
    """Verify the source's new CloudTrail digests; queue the log files they name that we lack.

    Runs after the logs are listed, under the same lease. A failure here is logged and does
    not stop log harvesting: the digests stay pending and are verified on a later run.
    """
    keys = CloudTrailPublicKeys(
        lambda region: rt.aws.client(info.chain, "cloudtrail", region),  # type: ignore[arg-type,return-value]
        cache=rt.public_keys,
    )
    try:
        with rt.sessions.begin() as session:
            run = verify_new_digests(
                session,
                lister=lister,
                s3=rt.aws.s3(info.chain, region=info.region),
                source_id=source_id,
                info=info,
                clock=rt.clock,
                key_provider=keys,
                policy=IntegrityPolicy.from_settings(rt.settings),
            )
            mark_queued(session, source_id=source_id, objects=run.unharvested, now=rt.clock())
    except AwsError as exc:
        log.warning("source %s: digest verification skipped this run: %s", source_id, exc)
        return None
    send_objects(rt, source_id=source_id, items=run.unharvested, enqueue=enqueue)
    metrics.record_integrity(
        verified=run.digests_verified,
        failed=run.digests_failed,
        pending=run.digests_pending,
        error=run.digests_error,
        files_verified=run.log_files_verified,
        files_missing=run.log_files_missing,
        files_altered=run.log_files_altered,
        files_unharvested=len(run.unharvested),
    )
    if run.digests_failed or run.log_files_missing or run.log_files_altered:
        log.warning("source %s: integrity: %s", source_id, run.summary())
    return run


def _record_run(
    rt: Runtime, *, source_id: int, result: SourceRunResult, now: datetime, folder: str = ""
) -> None:
    # ``folder`` (where the logs are expected) only words the silence reason of a run that
    # succeeded; a run that failed as a whole has none to give.
    with rt.sessions.begin() as session:
        source = session.get(Source, source_id)
        if source is None:
            return
        source.last_run_at = now
        source.last_run_objects = result.objects
        # The run's events (and the lag) grow as its objects finish: see _count_finished.
        source.last_run_events = 0
        if result.status == "ok":
            source.last_success_at = now
            # Every object listed, whatever became of it; the (source, object_time) index
            # makes this a lookup, not a scan.
            newest_seen = session.scalar(
                select(func.max(ProcessedObject.object_time)).where(
                    ProcessedObject.source_id == source_id
                )
            )
            result.silent = silence_reason(
                kind=source.kind,
                folder=folder,
                newest_seen=newest_seen,
                now=now,
                policy=SilencePolicy.from_settings(rt.settings),
                source_ref=str(source_id),
            )
            if result.silent and source.health != "silent":
                log.warning("source %s is silent: %s", source_id, result.silent)
            source.health = "silent" if result.silent else "ok"
            source.health_reason = result.silent
        else:
            source.health, source.health_reason = "degraded", result.error


# --- an object --------------------------------------------------------------------------------


@dataclass
class ObjectResult:
    key: str
    status: str  # done | corrupt | failed | missing
    events: int = 0
    bytes: int = 0
    batches: int = 0
    error: str | None = None


@dataclass
class ObjectsResult:
    source_id: int
    objects: list[ObjectResult] = field(default_factory=list)
    kind: str | None = None

    def summary(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for item in self.objects:
            counts[item.status] = counts.get(item.status, 0) + 1
        return {
            "source_id": self.source_id,
            "events": sum(o.events for o in self.objects),
            **counts,
        }


def harvest_objects(
    rt: Runtime, *, source_id: int, objects: Sequence[tuple[str, str]], emit: EmitBatch
) -> ObjectsResult:
    """Fetch, parse and emit each object; record each outcome in the ledger.

    A corrupt object is recorded with its error (its valid events before the fault were
    emitted) and the others go on. Transient AWS errors propagate so the task is retried;
    objects done before the error stay done.
    """
    with rt.sessions.begin() as session:
        source = load_source(session, source_id)
        if source is None:
            return ObjectsResult(source_id)
        info = source_info_from_row(
            source, secret_box=rt.box, default_external_id=rt.settings.external_id
        )
    client = rt.aws.s3(info.chain, region=info.region)
    result = ObjectsResult(source_id, kind=info.kind)
    with log_context(source_id=source_id):
        for key, etag in objects:
            result.objects.append(
                _harvest_object(
                    rt, source_id=source_id, info=info, client=client, key=key, etag=etag, emit=emit
                )
            )
    return result


def _harvest_object(
    rt: Runtime,
    *,
    source_id: int,
    info: SourceInfo,
    client: S3Client,
    key: str,
    etag: str,
    emit: EmitBatch,
) -> ObjectResult:
    stats = ParseStats()
    builder = BatchBuilder(emit)
    outcome = ObjectResult(key, "done")
    try:
        stream = open_object(client, info.bucket, key, etag=etag)
        with io.BufferedReader(stream, buffer_size=256 * 1024) as body:
            for event in parse_object(
                body,
                kind=info.kind,
                bucket=info.bucket,
                key=key,
                cluster=info.cluster_name,
                account=info.account_id,
                region=info.region,
                stats=stats,
            ):
                builder.add(event)
        builder.flush()
    except CorruptObjectError as exc:
        builder.flush()  # what was valid before the fault still counts
        outcome.status, outcome.error = "corrupt", str(exc)
    except (NoSuchKey, ObjectChanged) as exc:
        outcome.status, outcome.error = "missing", f"{exc} — {exc.remedy}"
    except AwsError as exc:
        if exc.retryable:
            raise
        outcome.status, outcome.error = "failed", f"{exc} — {exc.remedy}"
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as exc:
        # A bug met on this object: recorded failed (retried a bounded number of times by
        # later cycles), and the other objects, the source and the cycle go on.
        log.exception("source %s: object s3://%s/%s: unexpected error", source_id, info.bucket, key)
        outcome.status, outcome.error = "failed", unexpected_reason(exc)
    outcome.events, outcome.batches = builder.events, builder.batches
    outcome.bytes = stats.compressed_bytes
    now = rt.clock()
    with rt.sessions.begin() as session:
        if outcome.status == "done":
            mark_done(
                session,
                source_id=source_id,
                key=key,
                etag=etag,
                events=outcome.events,
                bytes=outcome.bytes,
                sha256=stats.sha256 or "",
                now=now,
            )
            _count_finished(session, source_id=source_id, key=key, events=outcome.events)
        elif outcome.status == "corrupt":
            mark_corrupt(
                session,
                source_id=source_id,
                key=key,
                etag=etag,
                error=outcome.error or "corrupt",
                now=now,
            )
        else:
            mark_failed(
                session,
                source_id=source_id,
                key=key,
                etag=etag,
                error=outcome.error or outcome.status,
                now=now,
            )
    if outcome.status != "done":
        log.warning("object s3://%s/%s: %s: %s", info.bucket, key, outcome.status, outcome.error)
    return outcome


def _count_finished(session: Session, *, source_id: int, key: str, events: int) -> None:
    """Add a finished object to its source's last run: its events, and the lag it ends.

    Figures are recorded as objects finish, not when the run lists them, so `sources
    list` is right as soon as the objects are done. One UPDATE, so workers finishing
    objects of the same source at once do not lose each other's counts.
    """
    modified = select(ProcessedObject.last_modified).where(
        ProcessedObject.source_id == source_id, ProcessedObject.key == key
    )
    newest = func.coalesce(modified.scalar_subquery(), Source.newest_object_at)
    session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(
            last_run_events=Source.last_run_events + events,
            # Lag is measured from the newest object finished, as S3 stamped it.
            newest_object_at=case(
                (Source.newest_object_at.is_(None), newest),
                (newest > Source.newest_object_at, newest),
                else_=Source.newest_object_at,
            ),
        )
    )


# --- a score batch ----------------------------------------------------------------------------


def score_batch(rt: Runtime, *, body: bytes, owner: str = ANONYMOUS) -> StoreSummary:
    """Decode a batch once, score it, store anomalies and incidents.

    Redelivered batches change nothing: the scorer de-duplicates event ids and anomalies are
    upserted by their dedup key. Incidents are left to ``correlate`` (``score.correlate``).
    ``owner`` is the task's id, the same on each of its retries and redeliveries.
    """
    events = decode_batch(body)
    with rt.sessions() as session:
        return score_and_store(
            session,
            rt.scorer,
            events,
            suppressions=rt.suppressions(),
            defer=rt.pending.mark,
            owner=owner,
        )


def correlate(rt: Runtime) -> CorrelationRun:
    """Chain the anomalies that scored batches left pending into incidents."""
    return correlate_marked(rt.sessions, rt.pending, clock=rt.clock)


# --- backfill ---------------------------------------------------------------------------------


@dataclass
class BackfillPlan:
    source_id: int
    objects: list[WorkItem]
    listed: int


def plan_backfill(rt: Runtime, *, source_id: int, since: datetime, until: datetime) -> BackfillPlan:
    """List a source's objects with key times in [since, until] and record them queued again."""
    with rt.sessions.begin() as session:
        source = load_source(session, source_id)
        if source is None:
            raise LookupError(f"no source with id {source_id}")
        info = source_info_from_row(
            source, secret_box=rt.box, default_external_id=rt.settings.external_id
        )
    lister = S3Lister(rt.aws.s3(info.chain, region=info.region), info.bucket)
    locations = _locations(rt, source_id=source_id, info=info, lister=lister)
    found = list_backfill(lister, locations=locations, since=since, until=until)
    with rt.sessions.begin() as session:
        mark_queued(session, source_id=source_id, objects=found.objects, now=rt.clock())
    return BackfillPlan(source_id, found.objects, found.listed)
