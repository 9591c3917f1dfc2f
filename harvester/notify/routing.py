"""Which destinations a finding goes to, and as what event: pure, no I/O.

A finding is notified to a destination when it is new, when its severity rises above what
that destination was last sent, and again every ``renotify_after`` while it stays open; a
repeat that only raises its count is not. An acknowledgement goes where the finding went.
Suppressed findings never get here: the scorer drops them before they are stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from harvester.detect.model import Severity
from harvester.notify.model import DestinationSpec

Change = Literal["new", "escalated", "repeat", "acknowledged"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # anomaly | incident
    subject_id: str
    change: Change  # what storing it did this time
    severity: Severity
    detector: str
    account_ids: tuple[str, ...]
    clusters: tuple[str, ...]
    status: str
    record: Mapping[str, Any]  # the JSON shape of ``anomalies list --output json``


@dataclass(frozen=True, slots=True)
class Sent:
    """What a destination was last sent of a finding."""

    at: datetime
    severity_rank: int


@dataclass(frozen=True, slots=True)
class Route:
    destination: str
    finding: Finding
    event: str  # new | escalated | acknowledged | renotify


def wanted(destination: DestinationSpec, finding: Finding) -> bool:
    """The destination's filters: severity, kind, detector globs, accounts, clusters."""
    if not destination.enabled or finding.kind not in destination.kinds:
        return False
    if finding.severity.rank < destination.min_severity.rank:
        return False
    if not destination.detector_wanted(finding.detector):
        return False
    if destination.accounts and not set(destination.accounts) & set(finding.account_ids):
        return False
    return not destination.clusters or bool(set(destination.clusters) & set(finding.clusters))


def event_for(
    destination: DestinationSpec, finding: Finding, last: Sent | None, now: datetime
) -> str | None:
    if finding.change == "acknowledged":
        # Only where it was sent: a receiver that never heard of it has nothing to resolve.
        return "acknowledged" if last is not None else None
    if not wanted(destination, finding):
        return None
    if last is None:
        # A repeat of a finding this destination never got (it was below min_severity, or the
        # destination is newer) is not news; a rise into range is.
        return {"new": "new", "escalated": "escalated"}.get(finding.change)
    if finding.severity.rank > last.severity_rank:
        return "escalated"
    if finding.status == "open" and now - last.at >= destination.renotify_after:
        return "renotify"
    return None


def route(
    findings: Sequence[Finding],
    destinations: Sequence[DestinationSpec],
    *,
    last_sent: Mapping[tuple[str, str], Sent],
    now: datetime,
) -> list[Route]:
    """Every (destination, finding) to notify; ``last_sent`` by (subject id, destination)."""
    routes = []
    for finding in findings:
        for destination in destinations:
            event = event_for(
                destination, finding, last_sent.get((finding.subject_id, destination.name)), now
            )
            if event is not None:
                routes.append(Route(destination.name, finding, event))
    return routes
