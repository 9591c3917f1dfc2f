"""Offline scan: normalized events and a summary from log objects already on disk.

The CLI's ``harvester scan PATH...`` calls this. Objects come from an *object source*:
any iterable of ``SourceObject(key, open, bucket)``, where ``open()`` returns a context
manager over a binary stream. ``local_objects`` walks files and folders as ``aws s3 sync``
leaves them; an S3 lister can produce the same tuples (with ``bucket`` set) and reuse
everything else here.

What an object holds is decided from its key, as the delivery layouts define it:
``AWSLogs/[o-org/]<account>/CloudTrail/<region>/…`` is a CloudTrail log file,
``CloudTrail-Digest`` and ``CloudTrail-Insight`` folders are skipped (no events of ours),
``EKSLogs/<account>/<cluster>/…`` is a Firehose object of EKS control-plane logs. A file
named explicitly whose name says nothing (a downloaded object renamed ``trail.json.gz``)
is read by its content instead: a ``Records`` document, CloudWatch Logs envelopes or audit
Events. Inside folders such files are counted and listed in ``ScanSummary.unrecognised``,
never dropped silently. A bad object is recorded with its error and the scan goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple

from harvester.distinct import DistinctCounter, ExactBudget
from harvester.events import UNKNOWN_TIME, Event, Principal
from harvester.parse import ContentReader, CorruptObjectError, ParseStats, Readable, parse_object
from harvester.sources import layouts
from harvester.sources.layouts import ObjectKind

__all__ = [
    "GroupSummary",
    "KeyInfo",
    "KeyKind",
    "ObjectError",
    "ScanSummary",
    "SourceObject",
    "classify_key",
    "iter_scan",
    "local_objects",
    "principal_key",
    "scan",
    "sniff_kind",
]

KeyKind = Literal["cloudtrail", "cloudtrail_digest", "cloudtrail_insight", "eks", "unknown"]
Opener = Callable[[], AbstractContextManager[Readable]]

_ACCOUNT = re.compile(r"^[0-9]{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
# A CloudTrail file name alone (a single file handed to the scan, outside its tree).
_CLOUDTRAIL_NAME = re.compile(
    r"^(?P<account>[0-9]{12})_CloudTrail(?P<suffix>-Digest|-Insight)?_(?P<region>[a-z0-9-]+)_"
    r"[0-9]{8}T[0-9]{4}Z"
)
_CLOUDTRAIL_FOLDERS: dict[str, KeyKind] = {
    "CloudTrail": "cloudtrail",
    "CloudTrail-Digest": "cloudtrail_digest",
    "CloudTrail-Insight": "cloudtrail_insight",
}


class SourceObject(NamedTuple):
    """One object to scan: its key (or path), how to open it, and its bucket if any.

    ``explicit``: the operator named this object itself (not a folder holding it), so its
    content decides what it is when its name does not.
    """

    key: str
    open: Opener
    bucket: str = ""
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class KeyInfo:
    kind: KeyKind
    account: str | None = None
    region: str | None = None
    cluster: str | None = None
    organization: str | None = None


_LAYOUT_KINDS: dict[ObjectKind, KeyKind] = {
    ObjectKind.LOG: "cloudtrail",
    ObjectKind.DIGEST: "cloudtrail_digest",
    ObjectKind.INSIGHT: "cloudtrail_insight",
    ObjectKind.EKS: "eks",
}


def classify_key(key: str) -> KeyInfo:
    """What the delivery layout says an object holds (``unknown`` when it says nothing).

    The harvest's own classifier decides first, so both agree on every well-formed key.
    Files on disk are not always well-formed keys (renamed, copied out of their tree), so
    a lenient reading of the folders, then of the CloudTrail file name alone, follows.
    """
    parsed = layouts.classify(key.replace("\\", "/"))
    if isinstance(parsed, layouts.ParsedKey):
        return KeyInfo(
            kind=_LAYOUT_KINDS[parsed.kind],
            account=parsed.account,
            region=parsed.region,
            cluster=parsed.cluster,
            organization=parsed.org_id,
        )
    parts = [part for part in key.replace("\\", "/").split("/") if part]
    for index, part in enumerate(parts):
        if part == "AWSLogs":
            info = _classify_awslogs(parts[index + 1 :])
            if info is not None:
                return info
        elif part == "EKSLogs" and len(parts) > index + 3 and _ACCOUNT.match(parts[index + 1]):
            return KeyInfo(kind="eks", account=parts[index + 1], cluster=parts[index + 2])
    if parts:
        match = _CLOUDTRAIL_NAME.match(parts[-1])
        if match is not None:
            kind = _CLOUDTRAIL_FOLDERS["CloudTrail" + (match.group("suffix") or "")]
            return KeyInfo(kind=kind, account=match.group("account"), region=match.group("region"))
    return KeyInfo(kind="unknown")


def _classify_awslogs(rest: list[str]) -> KeyInfo | None:
    organization = None
    if rest and _ORG.match(rest[0]):
        organization, rest = rest[0], rest[1:]
    if len(rest) < 4 or not _ACCOUNT.match(rest[0]):
        return None
    kind = _CLOUDTRAIL_FOLDERS.get(rest[1])
    if kind is None:
        return None
    region = rest[2] if _REGION.match(rest[2]) else None
    return KeyInfo(kind=kind, account=rest[0], region=region, organization=organization)


def local_objects(paths: Iterable[str | Path]) -> Iterator[SourceObject]:
    """Files given, and files under folders given (recursively, in name order)."""
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            yield SourceObject(key=path.as_posix(), open=_file_opener(path), explicit=True)
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        for file in files:
            yield SourceObject(key=file.as_posix(), open=_file_opener(file))


def _file_opener(path: Path) -> Opener:
    def opener() -> AbstractContextManager[Readable]:
        return path.open("rb")

    return opener


# --- what an object holds, from its content ------------------------------------------------

# How much decompressed content the sniff reads: the first chunk, enough for a record or two.
_SNIFF_BYTES = 64 * 1024
_LEADING_KEY = re.compile(rb'^\s*\{\s*"([^"\\]{1,64})"')
_ENVELOPE_KEYS = frozenset(
    (b"messageType", b"owner", b"logGroup", b"logStream", b"subscriptionFilters", b"logEvents")
)
_AUDIT_KEYS = frozenset((b"kind", b"apiVersion", b"level", b"auditID", b"stage", b"requestURI"))


def sniff_kind(head: bytes) -> KeyKind:
    """What the start of an object's (decompressed) content says it is.

    ``{"Records": [...]}`` is a CloudTrail log file, CloudWatch Logs envelopes or audit
    Events (``audit.k8s.io``) are EKS objects; anything else is ``unknown``.
    """
    match = _LEADING_KEY.match(head)
    if match is None:
        return "unknown"
    first = match.group(1)
    if first == b"Records" or b'"Records"' in head:
        return "cloudtrail"
    if first in _ENVELOPE_KEYS or (first in _AUDIT_KEYS and b'"audit.k8s.io/' in head):
        return "eks"
    return "unknown"


def _sniff(item: SourceObject) -> KeyKind:
    with item.open() as stream:
        head = ContentReader(stream, chunk_size=_SNIFF_BYTES, hash_content=False).read()
    return sniff_kind(head)


# --- the summary ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObjectError:
    """An object that could not be read to its end; ``events`` were read before the fault."""

    bucket: str
    key: str
    reason: str
    message: str
    byte_offset: int | None = None
    record_index: int | None = None
    events: int = 0


# Distinct principals counted exactly, over all groups of a scan, before counts are estimated.
EXACT_PRINCIPALS = 200_000


@dataclass(slots=True)
class GroupSummary:
    """Events of one (account, region) for CloudTrail, or one (account, cluster) for EKS."""

    objects: int = 0
    events: int = 0
    failed_events: int = 0
    principals: DistinctCounter = field(
        default_factory=lambda: DistinctCounter(ExactBudget(EXACT_PRINCIPALS))
    )
    first: datetime | None = None
    last: datetime | None = None
    errors: list[ObjectError] = field(default_factory=list)

    @property
    def distinct_principals(self) -> int:
        """Exact, or an estimate (within a few percent) when ``principals_estimated``."""
        return len(self.principals)

    @property
    def principals_estimated(self) -> bool:
        return self.principals.estimated

    def add(self, event: Event) -> None:
        self.events += 1
        if not event.outcome.success:
            self.failed_events += 1
        self.principals.add(principal_key(event.principal))
        when = event.time
        if when == UNKNOWN_TIME:
            return
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when


@dataclass(slots=True)
class ScanSummary:
    """Per (account, region) and per (account, cluster) summaries, plus what was skipped."""

    cloudtrail: dict[tuple[str, str], GroupSummary] = field(default_factory=dict)
    clusters: dict[tuple[str, str], GroupSummary] = field(default_factory=dict)
    objects: int = 0
    events: int = 0
    compressed_bytes: int = 0
    uncompressed_bytes: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: list[ObjectError] = field(default_factory=list)
    # Objects whose name and content are neither CloudTrail's nor EKS's (inside folders).
    unrecognised: list[str] = field(default_factory=list)
    # Shared by the groups' principal counters: memory stays bounded however many there are.
    exact_principals: ExactBudget = field(default_factory=lambda: ExactBudget(EXACT_PRINCIPALS))

    def group(self, kind: KeyKind, first: str | None, second: str | None) -> GroupSummary:
        table = self.clusters if kind == "eks" else self.cloudtrail
        name = (first or "unknown", second or "unknown")
        found = table.get(name)
        if found is None:
            found = table[name] = GroupSummary(principals=DistinctCounter(self.exact_principals))
        return found


def principal_key(principal: Principal) -> str:
    """One string per identity, the same across sources when the IAM ARN is known."""
    return (
        principal.iam_arn
        or principal.arn
        or principal.k8s_username
        or principal.name
        or principal.principal_id
        or principal.type
    )


# --- scanning ---------------------------------------------------------------------------------


def iter_scan(
    objects: Iterable[SourceObject],
    summary: ScanSummary,
    *,
    groups: bool = True,
    keep_events: bool = True,
) -> Iterator[Event]:
    """Normalized events of every object, updating ``summary`` as they stream by.

    ``summary`` is complete once the iterator is exhausted. A ``CorruptObjectError`` or an
    ``OSError`` while reading one object is recorded in ``summary.errors`` (and on the
    object's group) and the scan moves on to the next object. ``groups=False`` skips the
    per-account/region tallies (``parse`` prints none), leaving only the totals;
    ``keep_events=False`` says events are dropped soon after: their payloads are not
    copied out of the decoded batch they came from.
    """
    for item in objects:
        info: KeyInfo | None = classify_key(item.key)
        if info is not None and info.kind == "unknown" and item.explicit:
            info = _explicit_kind(item, summary)
        if info is None:
            continue
        if info.kind not in ("cloudtrail", "eks"):
            summary.skipped[info.kind] = summary.skipped.get(info.kind, 0) + 1
            if info.kind == "unknown":
                summary.unrecognised.append(item.key)
            continue
        summary.objects += 1
        yield from _scan_one(item, info, summary, groups=groups, keep_events=keep_events)


def _explicit_kind(item: SourceObject, summary: ScanSummary) -> KeyInfo | None:
    """The kind of a named object by its content; ``None`` (and an error) when it has none."""
    try:
        kind = _sniff(item)
    except (CorruptObjectError, OSError) as exc:
        reason = exc.reason if isinstance(exc, CorruptObjectError) else "unreadable"
        summary.errors.append(ObjectError(item.bucket, item.key, reason, str(exc)))
        return None
    if kind == "unknown":
        message = (
            "not a CloudTrail log file or an EKS Firehose object: neither its name nor its "
            "content (a Records document, CloudWatch Logs envelopes, audit Events) says so"
        )
        summary.errors.append(ObjectError(item.bucket, item.key, "unrecognised", message))
        return None
    return KeyInfo(kind=kind)


def _scan_one(
    item: SourceObject, info: KeyInfo, summary: ScanSummary, *, groups: bool, keep_events: bool
) -> Iterator[Event]:
    key_group = summary.group(
        info.kind, info.account, info.cluster if info.kind == "eks" else info.region
    )
    key_group.objects += 1
    stats = ParseStats()
    error: ObjectError | None = None
    try:
        with item.open() as stream:
            events = parse_object(
                stream,
                kind="eks" if info.kind == "eks" else "cloudtrail",
                bucket=item.bucket,
                key=item.key,
                cluster=info.cluster,
                account=info.account,
                region=info.region,
                stats=stats,
                hash_content=False,  # the digest hash: a scan verifies nothing
                copy_payloads=keep_events,
            )
            if groups:
                yield from _tallied(events, info, summary)
            else:
                yield from events  # totals only: the parser counts (added from stats below)
    except CorruptObjectError as exc:
        error = ObjectError(
            bucket=item.bucket,
            key=item.key,
            reason=exc.reason,
            message=str(exc),
            byte_offset=exc.byte_offset,
            record_index=exc.record_index,
            events=stats.events,
        )
    except OSError as exc:
        error = ObjectError(
            bucket=item.bucket,
            key=item.key,
            reason="unreadable",
            message=f"{exc.__class__.__name__}: {exc}",
            events=stats.events,
        )
    finally:
        summary.compressed_bytes += stats.compressed_bytes
        summary.uncompressed_bytes += stats.uncompressed_bytes
        if not groups:
            summary.events += stats.events
    if error is not None:
        summary.errors.append(error)
        key_group.errors.append(error)
    elif info.kind == "cloudtrail" and not stats.records_found:
        summary.skipped["no_records"] = summary.skipped.get("no_records", 0) + 1


def _tallied(events: Iterable[Event], info: KeyInfo, summary: ScanSummary) -> Iterator[Event]:
    """``events``, each added to the summary of its (account, region) or (account, cluster)."""
    current: tuple[str | None, str | None] | None = None
    group = summary.group(
        info.kind, info.account, info.cluster if info.kind == "eks" else info.region
    )
    for event in events:
        first = event.account or info.account
        second = (
            (event.cluster or info.cluster) if info.kind == "eks" else (event.region or info.region)
        )
        if (first, second) != current:
            # Org trails and Firehose objects mix groups rarely: look up on change only.
            current = (first, second)
            group = summary.group(info.kind, first, second)
        group.add(event)
        summary.events += 1
        yield event


def scan(
    objects: Iterable[SourceObject], *, on_event: Callable[[Event], None] | None = None
) -> ScanSummary:
    """Scan every object; ``on_event`` sees each event (events are not kept)."""
    summary = ScanSummary()
    for event in iter_scan(objects, summary):
        if on_event is not None:
            on_event(event)
    return summary
