"""Find what a bucket holds by listing with a delimiter: accounts, regions, clusters, and
where the logs actually are when the configured prefix finds nothing.

Each function costs one ListObjectsV2 call per page of folders it reads; :func:`locate_logs`
takes a call budget because a bucket's root can hold anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harvester.sources.layouts import (
    AWSLOGS,
    EKSLOGS,
    SourceKind,
    custom_prefix,
)
from harvester.sources.listing import PAGE_SIZE, Lister, ListPage, iter_prefixes

_ACCOUNT = re.compile(r"[0-9]{12}")
_ORG = re.compile(r"o-[a-z0-9]{10,32}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_CLUSTER = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")


def _folder(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _children(lister: Lister, folder: str) -> list[str]:
    """The names (without slash) of the folders directly under ``folder``."""
    return [p[len(folder) :].rstrip("/") for p in iter_prefixes(lister, prefix=folder)]


@dataclass(frozen=True, slots=True)
class AccountFolder:
    """An account's CloudTrail folder, alone or under an organization trail's folder."""

    root: str  # "[<prefix>/]AWSLogs/[<o-org-id>/]<account>/"
    prefix: str  # the custom prefix in front of AWSLogs/: "" or ends with "/"
    account: str
    org_id: str | None = None


def discover_accounts(lister: Lister, *, prefix: str = "") -> list[AccountFolder]:
    """Accounts under ``<prefix>AWSLogs/``: 12-digit folders, and those inside ``o-…`` ones."""
    custom = custom_prefix(prefix)
    base = f"{custom}{AWSLOGS}"
    found: list[AccountFolder] = []
    for name in _children(lister, base):
        if _ACCOUNT.fullmatch(name):
            found.append(AccountFolder(root=f"{base}{name}/", prefix=custom, account=name))
        elif _ORG.fullmatch(name):
            org_base = f"{base}{name}/"
            found.extend(
                AccountFolder(root=f"{org_base}{acct}/", prefix=custom, account=acct, org_id=name)
                for acct in _children(lister, org_base)
                if _ACCOUNT.fullmatch(acct)
            )
    return found


def discover_regions(lister: Lister, *, root: str, product: str = "CloudTrail") -> list[str]:
    """Regions with a folder under ``<root><product>/`` (product: CloudTrail, -Digest, -Insight)."""
    return [
        name for name in _children(lister, f"{_folder(root)}{product}/") if _REGION.fullmatch(name)
    ]


def discover_eks_accounts(lister: Lister, *, prefix: str = "") -> list[str]:
    """Accounts with a folder under ``<prefix>EKSLogs/``."""
    base = f"{custom_prefix(prefix)}{EKSLOGS}"
    return [name for name in _children(lister, base) if _ACCOUNT.fullmatch(name)]


def discover_clusters(lister: Lister, *, account_id: str, prefix: str = "") -> list[str]:
    """EKS clusters with a folder under ``<prefix>EKSLogs/<account>/``."""
    base = f"{custom_prefix(prefix)}{EKSLOGS}{account_id}/"
    return [name for name in _children(lister, base) if _CLUSTER.fullmatch(name)]


# --- where are the logs? --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogLocation:
    kind: SourceKind
    prefix: str  # the custom prefix in front of AWSLogs/ or EKSLogs/: "" or ends with "/"

    @property
    def folder(self) -> str:
        return f"{self.prefix}{AWSLOGS if self.kind is SourceKind.CLOUDTRAIL else EKSLOGS}"


@dataclass(slots=True)
class LogSearch:
    locations: list[LogLocation] = field(default_factory=list)
    max_depth: int = 2
    calls: int = 0
    folders_searched: int = 0
    truncated: bool = False  # the call budget ran out before the search did

    def of_kind(self, kind: SourceKind) -> list[LogLocation]:
        return [loc for loc in self.locations if loc.kind is kind]


class _Budget:
    """A Lister that counts its calls and refuses more than ``limit``."""

    def __init__(self, lister: Lister, limit: int) -> None:
        self._lister = lister
        self.limit = limit
        self.calls = 0
        self.refused = False

    @property
    def exhausted(self) -> bool:
        return self.calls >= self.limit

    def list_page(
        self,
        *,
        prefix: str,
        start_after: str | None = None,
        delimiter: str | None = None,
        continuation_token: str | None = None,
        max_keys: int = PAGE_SIZE,
    ) -> ListPage:
        if self.exhausted:
            # An empty last page ends the caller's iteration quietly; ``truncated`` tells.
            self.refused = True
            return ListPage(objects=(), prefixes=(), next_token=None)
        self.calls += 1
        return self._lister.list_page(
            prefix=prefix,
            start_after=start_after,
            delimiter=delimiter,
            continuation_token=continuation_token,
            max_keys=max_keys,
        )


def locate_logs(lister: Lister, *, max_depth: int = 2, max_calls: int = 50) -> LogSearch:
    """Find ``AWSLogs/`` and ``EKSLogs/`` folders up to ``max_depth`` folders below the root.

    Breadth first, so the shallowest locations come first; stops after ``max_calls`` LIST
    calls and says so in ``truncated``.
    """
    budget = _Budget(lister, max_calls)
    search = LogSearch(max_depth=max_depth)
    level = [""]
    for depth in range(max_depth + 1):
        deeper: list[str] = []
        for folder in level:
            if budget.exhausted:
                search.truncated = True
                break
            search.folders_searched += 1
            for name in _children(budget, folder):
                if f"{name}/" == AWSLOGS:
                    search.locations.append(LogLocation(SourceKind.CLOUDTRAIL, folder))
                elif f"{name}/" == EKSLOGS:
                    search.locations.append(LogLocation(SourceKind.EKS, folder))
                elif name and depth < max_depth:
                    deeper.append(f"{folder}{name}/")
        level = deeper
        if not level:
            break
    search.truncated = search.truncated or budget.refused
    search.calls = budget.calls
    return search


def explain_location(configured_prefix: str, kind: SourceKind, search: LogSearch) -> str | None:
    """A sentence for ``harvester doctor`` when the configured prefix is not where logs are.

    None when the configured location was found.
    """
    expected = custom_prefix(configured_prefix)
    found = search.of_kind(kind)
    wanted = LogLocation(kind, expected)
    if wanted in found:
        return None
    if not found:
        marker = AWSLOGS if kind is SourceKind.CLOUDTRAIL else EKSLOGS
        if search.truncated:
            return (
                f"no {marker} folder was found in the {search.folders_searched} folders searched "
                f"(the search stopped after {search.calls} LIST calls); give the prefix by hand"
            )
        where = (
            "at the bucket root"
            if search.max_depth == 0
            else f"within {search.max_depth} folder levels of the bucket root"
        )
        return f"no {marker} folder was found {where}: is this the right bucket?"
    places = ", ".join(repr(loc.folder) for loc in found)
    return f"logs are under {places}, not {wanted.folder!r}: set the prefix to {found[0].prefix!r}"
