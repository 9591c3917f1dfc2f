"""Incidents: anomalies of one identity that read as an attack chain.

Within a window (default one hour from the first anomaly), an identity's anomalies are put in
time order and mapped to the stages of an intrusion: getting in and looking around (1),
gaining persistence or more rights (2), then covering tracks or taking data (3). Two or more
stages in that order make an incident when the chain reaches stage 3 or holds a high or
critical anomaly. The
identity is the one the engine uses for baselines, which is the same in CloudTrail and EKS
(``principal.iam_arn``, plus the session for people), so a chain is followed across both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta

from harvester.detect.model import (
    STAGE_OF,
    TACTIC_NAMES,
    Anomaly,
    Incident,
    Severity,
    stable_digest,
)

__all__ = ["STAGE_NAMES", "build_incidents", "chain_stages"]

STAGE_NAMES = {
    1: "reconnaissance / initial access",
    2: "persistence / privilege escalation",
    3: "defense evasion / exfiltration / impact",
}


def _stage(anomaly: Anomaly) -> int:
    return STAGE_OF.get(anomaly.mitre_tactics[0], 0) if anomaly.mitre_tactics else 0


def chain_stages(anomalies: Sequence[Anomaly]) -> list[int]:
    """The longest run of rising stages in time order (empty when there is none)."""
    ordered = sorted(anomalies, key=lambda a: a.first_seen)
    best: dict[int, list[int]] = {}
    for anomaly in ordered:
        stage = _stage(anomaly)
        if stage == 0:
            continue
        longest = max((chain for last, chain in best.items() if last < stage), key=len, default=[])
        candidate = [*longest, stage]
        if len(candidate) > len(best.get(stage, [])):
            best[stage] = candidate
    return max(best.values(), key=len, default=[])


def build_incidents(
    anomalies: Iterable[Anomaly], *, window: timedelta = timedelta(hours=1)
) -> list[Incident]:
    by_identity: dict[str, list[Anomaly]] = defaultdict(list)
    for anomaly in anomalies:
        if anomaly.identity:
            by_identity[anomaly.identity].append(anomaly)
    incidents: list[Incident] = []
    for identity, items in by_identity.items():
        items.sort(key=lambda a: a.first_seen)
        start = 0
        while start < len(items):
            opened = items[start].first_seen
            group = [a for a in items[start:] if a.first_seen <= opened + window]
            stages = chain_stages(group)
            if _is_chain(stages, group):
                incidents.append(_incident(identity, group, stages))
                start += len(group)
            else:
                start += 1
    incidents.sort(key=lambda i: i.first_seen)
    return incidents


def _is_chain(stages: list[int], group: list[Anomaly]) -> bool:
    # Two early stages of medium anomalies are what a newcomer's first days look like; an
    # attack chain reaches evasion or exfiltration, or has something severe on the way.
    if len(stages) < 2:
        return False
    worst = max(a.severity.rank for a in group)
    return worst >= Severity.high.rank or (3 in stages and worst >= Severity.medium.rank)


def _incident(identity: str, group: list[Anomaly], stages: list[int]) -> Incident:
    worst = max(group, key=lambda a: (a.severity.rank, a.score))
    severity = worst.severity.raised(1) if len(stages) >= 3 else worst.severity
    score = min(100, max(a.score for a in group) + 8 * (len(stages) - 1))
    tactics: list[str] = []
    for anomaly in group:
        for tactic in anomaly.mitre_tactics:
            if tactic not in tactics:
                tactics.append(tactic)
    steps = " → ".join(STAGE_NAMES[s] for s in stages)
    lines = [
        f"{a.first_seen:%H:%M:%S} {a.title} ({a.severity}, {a.detector})"
        for a in sorted(group, key=lambda a: a.first_seen)
    ]
    names = ", ".join(TACTIC_NAMES.get(t, t) for t in tactics)
    return Incident(
        id=f"in-{stable_digest('incident', identity, group[0].dedup_key)[:16]}",
        identity=identity,
        title=f"Attack chain by {identity.rsplit('/', 1)[-1] or identity}: {steps}",
        severity=severity,
        score=score,
        account_ids=tuple(sorted({a.account_id for a in group if a.account_id})),
        clusters=tuple(sorted({a.cluster for a in group if a.cluster})),
        first_seen=min(a.first_seen for a in group),
        last_seen=max(a.last_seen for a in group),
        tactics=tuple(tactics),
        anomaly_ids=tuple(a.id for a in sorted(group, key=lambda a: a.first_seen)),
        explanation=f"{identity} went through {steps} within "
        f"{_minutes(group)} minutes ({names}): " + "; ".join(lines) + ".",
    )


def _minutes(group: list[Anomaly]) -> int:
    span = max(a.last_seen for a in group) - min(a.first_seen for a in group)
    return max(1, int(span.total_seconds() // 60))
