"""Where CloudTrail and EKS put their objects, as data plus pure functions.

A key is classified once (:func:`classify`) into a :class:`ParsedKey` (what it is, whose it
is, and the delivery time written in it) or a :class:`Skipped` with a reason the caller can
count. A :class:`ScopeLocation` is one listing unit (a trail's region, an EKS cluster): it
knows its key prefix and turns a time into the ``StartAfter`` key of a listing.

Keys sort by time inside a scope because every date part is zero-padded: a CloudTrail
region folder sorts by ``YYYY/MM/DD`` and then by the file name, whose only varying part
before the stamp is fixed (``<account>_CloudTrail_<region>_``); an EKS cluster folder sorts
by ``YYYY/MM/DD/HH``. So one listing from a ``StartAfter`` key crosses day, month and year
boundaries without one call per folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

AWSLOGS = "AWSLogs/"
EKSLOGS = "EKSLogs/"

_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
_ACCOUNT = r"[0-9]{12}"
_ORG = r"o-[a-z0-9]{10,32}"
_CLUSTER = r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}"
_DAY = r"(?P<y>[0-9]{4})/(?P<m>[0-9]{2})/(?P<d>[0-9]{2})"

_CLOUDTRAIL_KEY = re.compile(
    rf"(?P<prefix>(?:.+/)?)AWSLogs/(?:(?P<org>{_ORG})/)?(?P<account>{_ACCOUNT})/"
    rf"(?P<product>CloudTrail|CloudTrail-Digest|CloudTrail-Insight)/(?P<region>{_REGION})/"
    rf"{_DAY}/(?P<name>[^/]+)"
)
_LOG_NAME = re.compile(
    rf"(?P<account>{_ACCOUNT})_CloudTrail_(?P<region>{_REGION})_"
    r"(?P<stamp>[0-9]{8}T[0-9]{4}Z)_[A-Za-z0-9]+\.json\.gz"
)
_INSIGHT_NAME = re.compile(
    rf"(?P<account>{_ACCOUNT})_CloudTrail-Insight_(?P<region>{_REGION})_"
    r"(?P<stamp>[0-9]{8}T[0-9]{4}Z)_[A-Za-z0-9]+\.json\.gz"
)
# The trail name may itself contain underscores, hence the anchored regions around it.
_DIGEST_NAME = re.compile(
    rf"(?P<account>{_ACCOUNT})_CloudTrail-Digest_(?P<region>{_REGION})_(?P<trail>[A-Za-z0-9._-]+)_"
    rf"(?P<region2>{_REGION})_(?P<stamp>[0-9]{{8}}T[0-9]{{6}}Z)(?P<backfill>_backfill)?\.json\.gz"
)
_EKS_KEY = re.compile(
    rf"(?P<prefix>(?:.+/)?)EKSLogs/(?P<account>{_ACCOUNT})/(?P<cluster>{_CLUSTER})/"
    rf"{_DAY}/(?P<h>[0-9]{{2}})/(?P<name>[^/]+)"
)
# Firehose's default object name: <stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>.
_FIREHOSE_STAMP = re.compile(r"-([0-9]{4})-([0-9]{2})-([0-9]{2})-([0-9]{2})-([0-9]{2})-([0-9]{2})-")

_ACCOUNT_ROOT = re.compile(
    rf"(?P<prefix>(?:.+/)?)AWSLogs/(?:(?P<org>{_ORG})/)?(?:(?P<account>{_ACCOUNT})/"
    r"(?:CloudTrail/)?)?"
)
_EKS_ROOT = re.compile(
    rf"(?P<prefix>(?:.+/)?)EKSLogs/(?:(?P<account>{_ACCOUNT})/(?:(?P<cluster>{_CLUSTER})/)?)?"
)


class SourceKind(StrEnum):
    CLOUDTRAIL = "cloudtrail"
    EKS = "eks"


class ObjectKind(StrEnum):
    LOG = "log"
    DIGEST = "digest"
    INSIGHT = "insight"
    EKS = "eks"


class SkipReason(StrEnum):
    FOLDER_MARKER = "folder-marker"
    EMPTY = "zero-byte"
    UNRECOGNISED = "unrecognised"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key that follows a known layout, and what its path says."""

    key: str
    kind: ObjectKind
    prefix: str  # the custom prefix in front of AWSLogs/ or EKSLogs/: "" or ends with "/"
    account: str
    time: datetime  # the delivery time the key encodes
    org_id: str | None = None
    region: str | None = None
    cluster: str | None = None
    trail_name: str | None = None  # digests only
    backfill: bool = False  # a digest CloudTrail delivered late to cover delayed log files

    @property
    def scope(self) -> str:
        """The cursor scope the object belongs to: its region, or "" for an EKS cluster."""
        return self.region or ""

    @property
    def folder_time(self) -> datetime:
        """The time of the key's position in the listing order.

        For CloudTrail it is the file-name stamp; for EKS the hour folder, because objects of
        one hour folder sort by Firehose stream name first, not by their stamp.
        """
        if self.kind is ObjectKind.EKS:
            return self.time.replace(minute=0, second=0, microsecond=0)
        return self.time


@dataclass(frozen=True, slots=True)
class Skipped:
    key: str
    reason: SkipReason
    detail: str


def _day(match: re.Match[str]) -> date | None:
    try:
        return date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        return None


def _stamp(text: str) -> datetime | None:
    fmt = "%Y%m%dT%H%M%SZ" if len(text) == 16 else "%Y%m%dT%H%MZ"
    try:
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def _unrecognised(key: str, detail: str) -> Skipped:
    return Skipped(key, SkipReason.UNRECOGNISED, detail)


def classify(key: str, size: int | None = None) -> ParsedKey | Skipped:
    """What ``key`` is; ``size`` (when known) lets zero-byte objects be skipped."""
    if key.endswith("/"):
        return Skipped(key, SkipReason.FOLDER_MARKER, "a folder marker, not an object")
    if size == 0:
        return Skipped(key, SkipReason.EMPTY, "a zero-byte object carries no records")
    if (match := _CLOUDTRAIL_KEY.fullmatch(key)) is not None:
        return _classify_cloudtrail(key, match)
    if (match := _EKS_KEY.fullmatch(key)) is not None:
        return _classify_eks(key, match)
    return _unrecognised(key, "matches neither the CloudTrail nor the EKS key layout")


def _classify_cloudtrail(key: str, match: re.Match[str]) -> ParsedKey | Skipped:
    day = _day(match)
    if day is None:
        return _unrecognised(key, "the date folders are not a calendar date")
    product, account, region = match["product"], match["account"], match["region"]
    name_pattern = {
        "CloudTrail": _LOG_NAME,
        "CloudTrail-Digest": _DIGEST_NAME,
        "CloudTrail-Insight": _INSIGHT_NAME,
    }[product]
    named = name_pattern.fullmatch(match["name"])
    if named is None:
        return _unrecognised(key, f"the file name does not follow the {product} naming")
    if named["account"] != account or named["region"] != region:
        return _unrecognised(key, "the file name's account or region differs from its folders")
    stamp = _stamp(named["stamp"])
    if stamp is None:
        return _unrecognised(key, "the file name's timestamp is not a valid time")
    # The listing's StartAfter arithmetic assumes the stamp lies in its day folder.
    if stamp.date() != day:
        return _unrecognised(key, "the file name's date differs from its date folder")
    kind = {
        "CloudTrail": ObjectKind.LOG,
        "CloudTrail-Digest": ObjectKind.DIGEST,
        "CloudTrail-Insight": ObjectKind.INSIGHT,
    }[product]
    return ParsedKey(
        key=key,
        kind=kind,
        prefix=match["prefix"],
        account=account,
        time=stamp,
        org_id=match["org"],
        region=region,
        trail_name=named["trail"] if kind is ObjectKind.DIGEST else None,
        backfill=kind is ObjectKind.DIGEST and named["backfill"] is not None,
    )


def _classify_eks(key: str, match: re.Match[str]) -> ParsedKey | Skipped:
    day = _day(match)
    hour = int(match["h"])
    if day is None or hour > 23:
        return _unrecognised(key, "the date and hour folders are not a calendar time")
    folder = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return ParsedKey(
        key=key,
        kind=ObjectKind.EKS,
        prefix=match["prefix"],
        account=match["account"],
        time=_refine_with_firehose_stamp(folder, match["name"]),
        cluster=match["cluster"],
    )


def _refine_with_firehose_stamp(folder: datetime, name: str) -> datetime:
    # Only a stamp inside the folder's hour is trusted: a custom name could hold any digits.
    for found in _FIREHOSE_STAMP.finditer(name):
        year, month, day, hour, minute, second = (int(part) for part in found.groups())
        try:
            stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            continue
        if folder <= stamp < folder + timedelta(hours=1):
            return stamp
    return folder


# --- where a source's objects are -----------------------------------------------------------


def _as_folder(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def custom_prefix(prefix: str) -> str:
    """The part of a configured prefix in front of ``AWSLogs/`` or ``EKSLogs/`` ("" or "…/")."""
    folder = f"/{_as_folder(prefix)}"
    cut = max(folder.rfind(f"/{AWSLOGS}"), folder.rfind(f"/{EKSLOGS}"))
    return folder[1 : cut + 1] if cut >= 0 else folder[1:]


def cloudtrail_root(prefix: str, *, account_id: str, org_id: str | None = None) -> str:
    """The account folder of a trail: ``[<prefix>/]AWSLogs/[<o-org-id>/]<account-id>/``.

    ``prefix`` may be the custom prefix a trail was given (``""`` for none), or already a
    path that reaches ``AWSLogs/``, the organization folder or the account folder (what
    discovery or an operator pastes); it is completed with ``org_id`` and ``account_id``.
    """
    folder = _as_folder(prefix)
    match = _ACCOUNT_ROOT.fullmatch(folder)
    if match is None:
        if f"/{AWSLOGS}" in f"/{folder}":
            raise ValueError(
                f"the prefix {prefix!r} goes past the account folder; give the part up to "
                "AWSLogs/ or up to the account id"
            )
        return f"{folder}{AWSLOGS}{org_id + '/' if org_id else ''}{account_id}/"
    if match["account"] is not None and match["account"] != account_id:
        raise ValueError(
            f"the prefix {prefix!r} names account {match['account']}, not {account_id}"
        )
    org = match["org"] or org_id
    if match["org"] and org_id and match["org"] != org_id:
        raise ValueError(f"the prefix {prefix!r} names organization {match['org']}, not {org_id}")
    return f"{match['prefix']}{AWSLOGS}{org + '/' if org else ''}{account_id}/"


def eks_root(prefix: str, *, account_id: str, cluster: str) -> str:
    """A cluster's folder: ``[<prefix>/]EKSLogs/<account>/<cluster>/``; ``prefix`` as above."""
    folder = _as_folder(prefix)
    match = _EKS_ROOT.fullmatch(folder)
    if match is None:
        if f"/{EKSLOGS}" in f"/{folder}":
            raise ValueError(
                f"the prefix {prefix!r} goes past the cluster folder; give the part up to "
                "EKSLogs/ or up to the cluster name"
            )
        return f"{folder}{EKSLOGS}{account_id}/{cluster}/"
    if match["account"] is not None and match["account"] != account_id:
        raise ValueError(
            f"the prefix {prefix!r} names account {match['account']}, not {account_id}"
        )
    if match["cluster"] is not None and match["cluster"] != cluster:
        raise ValueError(f"the prefix {prefix!r} names cluster {match['cluster']}, not {cluster}")
    return f"{match['prefix']}{EKSLOGS}{account_id}/{cluster}/"


@dataclass(frozen=True, slots=True)
class ScopeLocation:
    """One listing unit: a trail's region folder or an EKS cluster folder.

    Build it with :func:`cloudtrail_scope` or :func:`eks_scope`.
    """

    kind: SourceKind
    prefix: str  # the folder one listing covers; ends with "/"
    account: str
    region: str = ""  # CloudTrail only
    cluster: str = ""  # EKS only

    @property
    def scope(self) -> str:
        """The cursor scope name: the region for CloudTrail, "" for an EKS cluster."""
        return self.region

    @property
    def object_kind(self) -> ObjectKind:
        return ObjectKind.LOG if self.kind is SourceKind.CLOUDTRAIL else ObjectKind.EKS

    def start_after(self, t: datetime) -> str:
        """The StartAfter key after which every object with a delivery time >= ``t`` sorts.

        CloudTrail stamps have minute precision, EKS folders hour precision, so ``t`` is
        floored to that: the listing may return a few older keys, never miss a newer one.
        """
        t = t.astimezone(UTC)
        if self.kind is SourceKind.CLOUDTRAIL:
            return (
                f"{self.prefix}{t:%Y/%m/%d}/{self.account}_CloudTrail_{self.region}_{t:%Y%m%dT%H%M}"
            )
        # The hour folder itself ("…/HH/") sorts just before everything inside it.
        return f"{self.prefix}{t:%Y/%m/%d/%H}/"

    def day_start_after(self, day: date) -> str:
        """The StartAfter key from which a listing covers whole day folders from ``day`` on."""
        return f"{self.prefix}{day:%Y/%m/%d}/"

    def owns(self, parsed: ParsedKey) -> bool:
        """Whether a parsed key is a log object of this scope (and not a digest or stray)."""
        return (
            parsed.kind is self.object_kind
            and parsed.account == self.account
            and parsed.scope == self.scope
            and (parsed.cluster or "") == self.cluster
            and parsed.key.startswith(self.prefix)
        )


def cloudtrail_scope(
    prefix: str, *, account_id: str, region: str, org_id: str | None = None
) -> ScopeLocation:
    """The region folder ``<root>CloudTrail/<region>/`` of a trail (see :func:`cloudtrail_root`)."""
    root = cloudtrail_root(prefix, account_id=account_id, org_id=org_id)
    return ScopeLocation(
        kind=SourceKind.CLOUDTRAIL,
        prefix=f"{root}CloudTrail/{region}/",
        account=account_id,
        region=region,
    )


def eks_scope(prefix: str, *, account_id: str, cluster: str) -> ScopeLocation:
    """The folder of one EKS cluster (see :func:`eks_root`)."""
    return ScopeLocation(
        kind=SourceKind.EKS,
        prefix=eks_root(prefix, account_id=account_id, cluster=cluster),
        account=account_id,
        cluster=cluster,
    )


def scope_location(
    kind: str,
    prefix: str,
    *,
    account_id: str,
    region: str = "",
    cluster: str = "",
    org_id: str | None = None,
) -> ScopeLocation:
    """The listing unit of a ``sources`` row: ``kind`` and ``prefix`` as stored on it, the
    region of a CloudTrail scope or the cluster of an EKS source."""
    if kind == SourceKind.CLOUDTRAIL:
        if not region:
            raise ValueError("a CloudTrail scope needs its region")
        return cloudtrail_scope(prefix, account_id=account_id, region=region, org_id=org_id)
    if kind == SourceKind.EKS:
        if not cluster:
            raise ValueError("an EKS scope needs its cluster name")
        return eks_scope(prefix, account_id=account_id, cluster=cluster)
    raise ValueError(f"unknown source kind {kind!r}: expected cloudtrail or eks")
