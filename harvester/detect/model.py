"""The vocabulary of detection: severities, ATT&CK tactics, detector declarations, anomalies.

A detector is a ``DetectorSpec`` (what it is, for people and for the triage screens) plus a
pure function; the engine turns what the functions report (``Hit``) into ``Anomaly`` records
with a stable id, evidence and a dedup key. ``Incident`` groups anomalies of one identity
that form an attack chain.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

import msgspec

__all__ = [
    "SCORE_OF",
    "STAGE_OF",
    "TACTIC_NAMES",
    "Anomaly",
    "DetectorKind",
    "DetectorSpec",
    "Evidence",
    "Hit",
    "Incident",
    "Severity",
    "SourceKind",
    "SuppressionRule",
    "stable_digest",
]

SourceKind = Literal["cloudtrail", "eks"]
DetectorKind = Literal["rule", "behaviour"]


class Severity(enum.StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def raised(self, steps: int = 1) -> Severity:
        return _ORDER[min(len(_ORDER) - 1, max(0, self.rank + steps))]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r} (use one of {names})") from None


_ORDER = tuple(Severity)
_RANK = {s: i for i, s in enumerate(_ORDER)}

# The score a severity starts from; detectors move it within the band for their confidence.
SCORE_OF: Mapping[Severity, int] = {
    Severity.info: 10,
    Severity.low: 30,
    Severity.medium: 55,
    Severity.high: 75,
    Severity.critical: 92,
}

TACTIC_NAMES: Mapping[str, str] = {
    "TA0043": "reconnaissance",
    "TA0001": "initial-access",
    "TA0002": "execution",
    "TA0003": "persistence",
    "TA0004": "privilege-escalation",
    "TA0005": "defense-evasion",
    "TA0006": "credential-access",
    "TA0007": "discovery",
    "TA0008": "lateral-movement",
    "TA0009": "collection",
    "TA0010": "exfiltration",
    "TA0040": "impact",
}

# Where a tactic sits in the chain an incident looks for: getting in and looking around (1),
# gaining a foothold or more rights (2), then covering tracks or taking data out (3).
STAGE_OF: Mapping[str, int] = {
    "TA0043": 1,
    "TA0001": 1,
    "TA0007": 1,
    "TA0002": 2,
    "TA0003": 2,
    "TA0004": 2,
    "TA0006": 2,
    "TA0008": 2,
    "TA0005": 3,
    "TA0009": 3,
    "TA0010": 3,
    "TA0040": 3,
}


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """The declaration of a detector: everything but its function."""

    id: str
    version: int
    title: str
    description: str
    severity: Severity
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    sources: frozenset[SourceKind]
    kind: DetectorKind = "rule"
    parameters: Mapping[str, object] = field(default_factory=dict)
    # Repeats within this window raise one anomaly's count instead of adding anomalies.
    dedup_window: timedelta = timedelta(hours=24)
    # Whether it stays quiet until an entity's baseline is older than the learning period
    # (behavioural detectors say so); the evaluation counts the false positives of a
    # detector that does not learn over the learning period too.
    learns: bool = False

    def __post_init__(self) -> None:
        unknown = [t for t in self.tactics if t not in TACTIC_NAMES]
        if unknown or not self.tactics:
            raise ValueError(f"detector {self.id}: unknown or missing ATT&CK tactics {unknown}")


@dataclass(slots=True)
class Hit:
    """What a detector function reports about one event.

    ``summary`` says in words what happened ("… called iam:CreateAccessKey for user bob");
    ``context`` adds the baseline ("first time in 12 days …"). ``discriminator`` splits
    anomalies of one detector and entity (a network, a region); ``routine_key`` lets the
    engine learn that an entity does this thing routinely and stop reporting it.
    """

    summary: str
    context: str = ""
    severity: Severity | None = None
    score: int | None = None
    discriminator: str = ""
    routine_key: str | None = None
    title: str | None = None
    tactics: tuple[str, ...] | None = None
    # Account- or cluster-level detectors set the scope the dedup key is built on.
    scope: str | None = None


class Evidence(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One event behind an anomaly, with the pointer back to its raw record."""

    event_id: str
    time: datetime
    source: str
    action: str
    bucket: str
    key: str
    index: int


class Anomaly(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    dedup_key: str
    detector: str
    detector_version: int
    title: str
    severity: Severity
    score: int
    account_id: str | None
    region: str | None
    cluster: str | None
    principal: str | None
    identity: str | None
    source_ip: str | None
    first_seen: datetime
    last_seen: datetime
    count: int
    explanation: str
    evidence: tuple[Evidence, ...]
    mitre_tactics: tuple[str, ...]
    mitre_techniques: tuple[str, ...]
    status: str = "open"

    @property
    def event_ids(self) -> list[str]:
        return [e.event_id for e in self.evidence]

    @property
    def stage(self) -> int:
        return max((STAGE_OF.get(t, 0) for t in self.mitre_tactics[:1]), default=0)


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    identity: str
    title: str
    severity: Severity
    score: int
    account_ids: tuple[str, ...]
    clusters: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    tactics: tuple[str, ...]
    anomaly_ids: tuple[str, ...]
    explanation: str
    status: str = "open"


@dataclass(frozen=True, slots=True)
class SuppressionRule:
    """Mute a detector (``*`` for all), optionally for one principal or account, until a time.

    ``principal`` is matched (shell-style wildcards allowed) against an anomaly's identity and
    its principal as reported.
    """

    detector: str
    principal: str | None = None
    account: str | None = None
    until: datetime | None = None
    id: int | None = None

    def matches(self, anomaly: Anomaly, now: datetime) -> bool:
        if self.until is not None and self.until <= now:
            return False
        if self.detector != "*" and not fnmatchcase(anomaly.detector, self.detector):
            return False
        if self.account is not None and anomaly.account_id != self.account:
            return False
        if self.principal is None:
            return True
        return any(
            value is not None and fnmatchcase(value, self.principal)
            for value in (anomaly.identity, anomaly.principal)
        )


def stable_digest(*parts: str) -> str:
    """A hex digest of ``parts`` that is the same in every process and run."""
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
