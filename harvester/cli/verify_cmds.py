"""``harvester verify``: prove, hour by hour, that CloudTrail log files are whole and unaltered.

The lead registers it with ``app.command("verify")(verify)``. The target is an inventory
source (its role and bucket, and the harvest ledger's hashes so harvested log files are not
downloaded again), an ``s3://bucket/prefix`` URL (the usual AWS credential chain), or a
local copy of a trail bucket. The command reads only; anomalies are the harvest's job.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import boto3
import typer

from harvester.aws.errors import AwsError, aws_errors
from harvester.aws.identity import source_info_from_row
from harvester.aws.session import ClientSettings, SessionFactory
from harvester.cli.context import AppContext
from harvester.cli.output import OutputFormat, console, err_console, print_json, print_table
from harvester.clock import Clock, utcnow
from harvester.durations import parse_duration
from harvester.integrity.anomalies import OverdueDigest
from harvester.integrity.keys import (
    CloudTrailPublicKeys,
    FilePublicKeys,
    PublicKeyError,
    PublicKeyProvider,
)
from harvester.integrity.repository import DbLedgerView
from harvester.integrity.service import (
    DIGEST_FOLDER,
    IntegrityPolicy,
    digest_folders,
    find_digests,
    find_overdue,
    verify_digests,
)
from harvester.integrity.stores import LocalTrailStore, S3TrailStore, TrailStore
from harvester.integrity.verify import (
    ChainId,
    ChainStatus,
    DigestCheck,
    DigestStatus,
    LedgerView,
    LogStatus,
    SignatureStatus,
    Verifier,
    VerifyPolicy,
)
from harvester.inventory import service
from harvester.inventory.validation import InvalidValue
from harvester.scan_s3 import S3Url, s3_client
from harvester.sources.discovery import discover_regions
from harvester.sources.layouts import ParsedKey, cloudtrail_root
from harvester.sources.s3lister import S3Lister
from harvester.terminal import printable

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient

__all__ = ["verify"]

COLUMNS = ["hour (UTC)", "region", "digest", "chain", "log files", "missing", "altered", "result"]
LOCAL_NOTE = (
    "This is a local copy: copying an object does not keep its metadata, where CloudTrail "
    "stores each digest's signature, so signatures were not checked. The chain of digests "
    "(each records the SHA-256 of the one before it) and every log file's SHA-256 were."
)


def _time(value: str, option: str, clock: Clock) -> datetime:
    """A duration back from now (24h, 7d) or an ISO 8601 time."""
    try:
        return clock() - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValue(
            option, value, "give a duration back from now (6h, 7d) or a time (2026-01-15T12:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass
class Target:
    """What to verify: a store, its digests, and how to find log files past the last one."""

    description: str
    store: TrailStore
    digests: list[tuple[str, ParsedKey]]
    keys: PublicKeyProvider | None
    ledger: LedgerView | None = None
    first_log_after: Callable[[ParsedKey, datetime], tuple[str, datetime] | None] | None = None
    notes: list[str] = field(default_factory=list)


def _public_keys(path: Path | None) -> FilePublicKeys | None:
    if path is None:
        return None
    try:
        return FilePublicKeys.from_file(path)
    except PublicKeyError as exc:
        raise InvalidValue("--public-keys", str(path), str(exc)) from None


def _aws(target: str, call: Callable[[], Any], *, bucket: str | None = None) -> Any:
    """Run a listing; what AWS refuses is the operator's to fix (a bucket name, a right)."""
    try:
        with aws_errors(operation="ListObjectsV2", bucket=bucket):
            return call()
    except AwsError as exc:
        raise InvalidValue("TARGET", target, exc.describe()) from None


def _s3_target(
    url: S3Url,
    *,
    target: str,
    since: datetime,
    until: datetime,
    keys: FilePublicKeys | None,
    endpoint_url: str | None,
) -> Target:
    client = s3_client(endpoint_url=endpoint_url)
    lister = S3Lister(client, url.bucket)
    folders = _aws(target, lambda: digest_folders(lister, prefix=url.prefix), bucket=url.bucket)
    digests = _aws(
        target,
        lambda: find_digests(lister, folders=folders, since=since, until=until),
        bucket=url.bucket,
    )

    def cloudtrail(region: str) -> CloudTrailClient:
        return boto3.Session(region_name=region).client(
            "cloudtrail", config=ClientSettings().to_config()
        )

    store = S3TrailStore(client, url.bucket)
    return Target(
        description=target,
        store=store,
        digests=digests,
        keys=keys or CloudTrailPublicKeys(cloudtrail),
        first_log_after=store.first_log_after,
    )


def _local_target(path: Path, *, since: datetime, until: datetime) -> Target:
    store = LocalTrailStore(path)
    end = until + timedelta(hours=1)
    digests = [(key, parsed) for key, parsed in store.digest_files() if since < parsed.time <= end]
    return Target(
        description=str(path),
        store=store,
        digests=digests,
        keys=None,
        first_log_after=store.first_log_after,
        notes=[LOCAL_NOTE],
    )


@contextmanager
def _source_target(
    app: AppContext,
    ref: str,
    *,
    since: datetime,
    until: datetime,
    keys: FilePublicKeys | None,
    endpoint_url: str | None,
) -> Iterator[Target]:
    with app.session() as session:
        row = service.find_source(session, ref)
        if row.kind != "cloudtrail":
            raise InvalidValue(
                "SOURCE", ref, "only CloudTrail sources have digest files (this is an EKS cluster)"
            )
        info = source_info_from_row(
            row, secret_box=app.box, default_external_id=app.settings.external_id
        )
        factory = SessionFactory(endpoint_url=endpoint_url)
        client = factory.s3(info.chain, region=info.region)
        lister = S3Lister(client, info.bucket)
        root = cloudtrail_root(info.prefix, account_id=info.account_id, org_id=info.organization_id)

        def folders() -> list[str]:
            regions = discover_regions(lister, root=root, product=DIGEST_FOLDER)
            return [f"{root}{DIGEST_FOLDER}/{region}/" for region in regions]

        found = _aws(
            ref,
            lambda: find_digests(lister, folders=folders(), since=since, until=until),
            bucket=info.bucket,
        )

        def cloudtrail(region: str) -> CloudTrailClient:
            return cast("CloudTrailClient", factory.client(info.chain, "cloudtrail", region))

        policy = IntegrityPolicy.from_settings(app.settings)
        store = S3TrailStore(client, info.bucket)
        yield Target(
            description=f"source {row.id} (account {info.account_id}, s3://{info.bucket}/{root})",
            store=store,
            digests=found,
            keys=keys or CloudTrailPublicKeys(cloudtrail),
            ledger=DbLedgerView(
                session,
                source_id=row.id,
                lateness_window=policy.lateness_window,
                prune_margin=policy.prune_margin,
            ),
            first_log_after=store.first_log_after,
        )


# --- presenting --------------------------------------------------------------------------------


def _hour(check: DigestCheck) -> str:
    digest = check.digest
    if digest is None:
        text = f"delivered {check.delivered_at:%Y-%m-%d %H:%M}"
    else:
        text = f"{digest.start_time:%Y-%m-%d %H:%M}–{digest.end_time:%H:%M}"
    return f"{text} (backfill)" if check.backfill else text


def _digest_word(check: DigestCheck) -> str:
    if check.error:
        return "not checked (error)"
    if check.problem:
        return "NOT A VALID DIGEST"
    return {
        SignatureStatus.VALID: "present, signature valid",
        SignatureStatus.INVALID: "SIGNATURE INVALID",
        SignatureStatus.UNKNOWN_KEY: "SIGNED BY UNKNOWN KEY",
        SignatureStatus.UNSIGNED: "NOT SIGNED",
        SignatureStatus.NOT_CHECKED: "present (signature not checked)",
    }[check.signature]


def _chain_word(check: DigestCheck) -> str:
    return {
        ChainStatus.INTACT: "intact",
        ChainStatus.START: "first of its chain",
        ChainStatus.RESTARTED: "NEW CHAIN after a gap",
        ChainStatus.BROKEN: "BROKEN",
        ChainStatus.GAP: "GAP: previous digest missing",
        ChainStatus.NOT_CHECKED: "not checked",
    }[check.chain]


def _result(check: DigestCheck) -> str:
    status = check.status
    if status is DigestStatus.OK:
        return "ok"
    if status is DigestStatus.ERROR:
        return f"could not verify: {check.error}"
    if status is DigestStatus.PENDING:
        return "pending"
    reasons = []
    if check.problem:
        reasons.append("not a valid digest" if "moved" not in check.problem else "moved")
    if check.signature in _BAD_SIGNATURES:
        reasons.append(_BAD_SIGNATURES[check.signature])
    if check.chain in _BAD_LINKS:
        reasons.append(_BAD_LINKS[check.chain])
    for state in (LogStatus.MISSING, LogStatus.ALTERED):
        count = check.count(state)
        if count:
            reasons.append(f"{count} log file{'s' if count > 1 else ''} {state.value}")
    return "FAILED: " + "; ".join(reasons)


_BAD_SIGNATURES = {
    SignatureStatus.INVALID: "signature invalid",
    SignatureStatus.UNKNOWN_KEY: "signed by a key CloudTrail never published",
    SignatureStatus.UNSIGNED: "no signature",
}
_BAD_LINKS = {
    ChainStatus.BROKEN: "does not match the digest before it",
    ChainStatus.GAP: "the digest before it is missing",
    ChainStatus.RESTARTED: "new chain: the time before it is not covered",
}


def _gap_row(check: DigestCheck) -> list[Any] | None:
    if check.chain is ChainStatus.GAP:
        what = "MISSING (deleted)"
    elif check.chain is ChainStatus.RESTARTED:
        what = "none (logging or validation off?)"
    else:
        return None
    start = f"{check.gap_start:%Y-%m-%d %H:%M}" if check.gap_start else "…"
    end = f"{check.gap_end:%H:%M}" if check.gap_end else "…"
    result = "FAILED: no digest covers this time"
    return [f"{start}–{end}", check.parsed.region, what, "—", "unverifiable", "?", "?", result]


def _record(check: DigestCheck) -> dict[str, Any]:
    digest = check.digest
    return {
        "digest": check.location,
        "region": check.parsed.region,
        "trail": check.parsed.trail_name,
        "backfill": check.backfill,
        "start": digest.start_time if digest else None,
        "end": digest.end_time if digest else None,
        "status": check.status.value,
        "signature": check.signature.value,
        "chain": check.chain.value,
        "previous_digest": check.previous_location,
        "gap_start": check.gap_start,
        "gap_end": check.gap_end,
        "log_files": len(check.logs),
        "verified": check.count(LogStatus.VERIFIED),
        "missing": [log.key for log in check.logs if log.status is LogStatus.MISSING],
        "altered": [log.key for log in check.logs if log.status is LogStatus.ALTERED],
        "unharvested": [log.key for log in check.logs if log.unharvested],
        "problems": check.failures,
        "error": check.error,
    }


def verify(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE|s3://bucket/prefix|PATH",
            help="An inventory source (id or account), a bucket URL, or a local copy.",
        ),
    ],
    since: Annotated[
        str, typer.Option("--since", help="From: a duration back from now (24h, 7d) or a time.")
    ] = "24h",
    until: Annotated[
        str | None, typer.Option("--until", help="To: a duration back from now or a time.")
    ] = None,
    public_keys: Annotated[
        Path | None,
        typer.Option(
            "--public-keys",
            help="Output of 'aws cloudtrail list-public-keys' to check signatures offline "
            "(default: ask CloudTrail).",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", help="S3 endpoint (an emulator).")
    ] = None,
) -> None:
    """Verify CloudTrail log file integrity from the digest files, hour by hour.

    For each hour: is the digest there and signed by CloudTrail, does it link to the one
    before, are the log files it lists all there and unchanged. Exit status 1 when anything
    fails to verify.
    """
    app = ctx.find_object(AppContext)
    clock: Clock = app.clock if app is not None else utcnow
    start = _time(since, "--since", clock)
    end = _time(until, "--until", clock) if until else clock()
    if start >= end:
        raise InvalidValue("--since", since, "must be earlier than --until")
    keys = _public_keys(public_keys)
    if target.startswith("s3:"):
        url = S3Url.parse(target)
        found = _s3_target(
            url, target=target, since=start, until=end, keys=keys, endpoint_url=endpoint_url
        )
        _run(found, start=start, end=end, clock=clock, output=output)
        return
    if Path(target).exists():
        local = _local_target(Path(target), since=start, until=end)
        _run(local, start=start, end=end, clock=clock, output=output)
        return
    if app is None:
        raise InvalidValue("TARGET", target, "no such file or folder")
    with _source_target(
        app, target, since=start, until=end, keys=keys, endpoint_url=endpoint_url
    ) as found:
        _run(found, start=start, end=end, clock=clock, output=output)


def _run(
    target: Target, *, start: datetime, end: datetime, clock: Clock, output: OutputFormat
) -> None:
    verifier = Verifier(
        store=target.store,
        keys=target.keys,
        clock=clock,
        ledger=target.ledger,
        # An audit does not wait for the harvest: what the ledger lacks is read now.
        policy=VerifyPolicy(pending_timeout=timedelta(0)),
    )
    checks = verify_digests(target.digests, verifier=verifier)
    overdue = _overdue(target, checks, until=min(end, clock()))
    failed = not checks or bool(overdue) or any(c.status is not DigestStatus.OK for c in checks)
    if output is OutputFormat.json:
        print_json(
            {
                "target": target.description,
                "since": start,
                "until": end,
                "signatures_checked": target.store.signed,
                "digests": [_record(c) for c in checks],
                "overdue": [
                    {
                        "region": o.chain.region,
                        "trail": o.chain.trail,
                        "last_digest": target.store.location(o.last_key),
                        "last_digest_end": o.last_end,
                        "first_uncovered_log": target.store.location(o.first_uncovered_log),
                        "delivered": o.first_uncovered_time,
                    }
                    for o in overdue
                ],
                "downloaded_log_files": _downloads(target.store),
                "ok": not failed,
            },
            sort_keys=False,
        )
    else:
        _print(target, checks, overdue, start=start, end=end)
    if failed:
        raise typer.Exit(1)


def _downloads(store: TrailStore) -> int:
    return int(getattr(store, "downloads", 0))


def _overdue(target: Target, checks: list[DigestCheck], *, until: datetime) -> list[OverdueDigest]:
    """Chains whose last digest in range ended long before ``until`` while logs arrived."""
    finder = target.first_log_after
    if finder is None:
        return []
    last: dict[ChainId, DigestCheck] = {}
    for check in checks:
        if check.digest is None or check.backfill:
            continue
        known = last.get(check.chain_id)
        if known is None or (
            known.digest is not None and check.digest.end_time > known.digest.end_time
        ):
            last[check.chain_id] = check
    parsed = {chain: check.parsed for chain, check in last.items()}

    def first_log_after(chain: ChainId, after: datetime) -> tuple[str, datetime] | None:
        found = _aws(target.description, lambda: finder(parsed[chain], after))
        # Logs delivered after the range are for a later verification to judge.
        return found if found is not None and found[1] <= until else None

    return find_overdue(
        [(chain, c.key, c.digest.end_time) for chain, c in last.items() if c.digest is not None],
        first_log_after=first_log_after,
        bucket=target.store.bucket,
        now=until,
        grace=IntegrityPolicy().overdue_grace,
    )


def _print(
    target: Target,
    checks: list[DigestCheck],
    overdue: list[OverdueDigest],
    *,
    start: datetime,
    end: datetime,
) -> None:
    out = console()
    out.print(
        f"Log file integrity of {target.description}, {start:%Y-%m-%d %H:%M} to "
        f"{end:%Y-%m-%d %H:%M} UTC"
    )
    for note in target.notes:
        out.print(note)
    if not checks:
        err_console().print(
            "No CloudTrail digest files were found in that time. Is log file validation on "
            "for the trail, and is this where it delivers?"
        )
        return
    rows: list[list[Any]] = []
    for check in sorted(checks, key=lambda c: (c.parsed.region or "", c.parsed.time, c.key)):
        gap = _gap_row(check)
        if gap is not None:
            rows.append(gap)
        rows.append(
            [
                _hour(check),
                check.parsed.region,
                _digest_word(check),
                _chain_word(check),
                f"{check.count(LogStatus.VERIFIED)}/{len(check.logs)} verified",
                check.count(LogStatus.MISSING),
                check.count(LogStatus.ALTERED),
                _result(check),
            ]
        )
    for late in overdue:
        rows.append(
            [
                f"after {late.last_end:%Y-%m-%d %H:%M}",
                late.chain.region,
                "NONE although logs arrived",
                "—",
                "unverifiable",
                "?",
                "?",
                f"FAILED: no digest covers {target.store.location(late.first_uncovered_log)} "
                f"(delivered {late.first_uncovered_time:%Y-%m-%d %H:%M})",
            ]
        )
    print_table("CloudTrail digests, hour by hour", COLUMNS, rows)
    ok = sum(1 for c in checks if c.status is DigestStatus.OK)
    logs = [log for c in checks for log in c.logs]
    verified = sum(1 for log in logs if log.status is LogStatus.VERIFIED)
    missing = sum(1 for log in logs if log.status is LogStatus.MISSING)
    altered = sum(1 for log in logs if log.status is LogStatus.ALTERED)
    out.print(
        f"{ok} of {len(checks)} digests verified; {verified} of {len(logs)} log files verified, "
        f"{missing} missing, {altered} altered."
    )
    unharvested = sum(1 for log in logs if log.unharvested)
    if unharvested:
        out.print(f"{unharvested} log files listed in digests were never harvested.")
    for check in checks:
        for log in check.logs:
            if log.status in (LogStatus.MISSING, LogStatus.ALTERED):
                location = printable(target.store.location(log.key))
                print(f"{log.status.value}: {location}", file=sys.stderr)
