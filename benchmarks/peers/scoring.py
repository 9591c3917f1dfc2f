"""Scoring a rule pack's alerts against labelled cases, the same way for every pack.

A corpus of single records (``per_case``) is scored like ``benchmarks.detection`` scores ours:
each record alone, recall over attack records, false positives as benign records alerted. A
generated organization is scored as a stream: recall over attack techniques (an alert naming one
of its records finds it), false positives as alerts whose records are all benign.

Strict recall credits only a rule meant for the case: for a Panther test case its own Panther
rule; otherwise a rule ``expected.yaml`` names for the case's group (reviewed by hand: the packs
tag ATT&CK in different versions, so shared technique ids would miss the rule meant and credit
catch-alls). Any-alert recall is printed beside.
Severity medium or more is counted apart from low and info.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.peers.cases import Case

SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class PeerAlert:
    """One alert of a pack: the rule, its severity, the cases (indexes) it names."""

    rule: str
    severity: str
    cases: tuple[int, ...]


def at_least_medium(severity: str) -> bool:
    return SEVERITY_ORDER.get(severity, 0) >= SEVERITY_ORDER["medium"]


EXPECTED = Path(__file__).with_name("expected.yaml")
Expected = dict[str, dict[str, list[str]]]


def load_expected(path: Path = EXPECTED) -> Expected:
    """The peer rules meant for each attack group (``expected.yaml``)."""
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(group): {k: list(v) for k, v in packs.items()} for group, packs in loaded.items()}


def family(pack: str) -> str:
    """``sigma`` or ``panther``: the rule pack a figure's variant runs."""
    return pack.split("+", maxsplit=1)[0]


def meant_for(alert: PeerAlert, case: Case, *, pack: str, expected: Expected) -> bool:
    """Whether the alert's rule is one meant for this case (strict recall)."""
    if case.rule_id is not None and family(pack) == "panther":
        return alert.rule == case.rule_id
    return alert.rule in expected.get(case.group, {}).get(family(pack), ())


def score(
    cases: Sequence[Case],
    alerts: Sequence[PeerAlert],
    *,
    pack: str,
    per_case: bool,
    expected: Expected | None = None,
) -> dict[str, Any]:
    """The figures of one pack on one corpus (shape in ``benchmarks.peers``)."""
    expected = expected if expected is not None else load_expected()
    on_case: dict[int, list[PeerAlert]] = defaultdict(list)
    for alert in alerts:
        for index in alert.cases:
            on_case[index].append(alert)
    benign = [i for i, c in enumerate(cases) if c.label == "benign"]

    # Recall units: attack records (per case) or attack groups (a stream).
    units: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        if case.label == "attack":
            key = f"{index}:{case.group}" if per_case else case.group
            units[key].append(index)
    found_any: list[str] = []
    found_strict: list[str] = []
    for key, indexes in units.items():
        named = [(a, cases[i]) for i in indexes for a in on_case.get(i, ())]
        if named:
            found_any.append(key)
        if any(meant_for(a, c, pack=pack, expected=expected) for a, c in named):
            found_strict.append(key)
    missed = sorted({_unit_name(cases, units[k]) for k in units if k not in set(found_strict)})

    per_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    fp_alerts: list[PeerAlert] = []
    for alert in alerts:
        labels = {cases[i].label for i in alert.cases}
        if "attack" in labels:
            per_rule[alert.rule][0] += 1
        elif labels == {"benign"}:
            per_rule[alert.rule][1] += 1
            fp_alerts.append(alert)

    if per_case:
        # Ours counts benign records alerted; a record counts at its highest alert severity.
        worst = {
            i: max((SEVERITY_ORDER.get(a.severity, 0) for a in on_case[i]), default=-1)
            for i in benign
        }
        fp_medium = sum(1 for v in worst.values() if v >= SEVERITY_ORDER["medium"])
        fp_low = sum(1 for v in worst.values() if 0 <= v < SEVERITY_ORDER["medium"])
    else:
        fp_medium = sum(1 for a in fp_alerts if at_least_medium(a.severity))
        fp_low = len(fp_alerts) - fp_medium

    negatives = [i for i in benign if cases[i].rule_id is not None]
    negative_alerted: dict[str, int] = defaultdict(int)
    for i in negatives:
        if on_case.get(i):
            top = max(on_case[i], key=lambda a: SEVERITY_ORDER.get(a.severity, 0))
            negative_alerted[top.severity] += 1

    attacks = len(units)
    per_10k = 10_000 / len(benign) if benign else float("nan")
    return {
        "units": "attack events" if per_case else "techniques",
        "attacks": attacks,
        "found_strict": len(found_strict),
        "found_any": len(found_any),
        "recall_strict": len(found_strict) / attacks if attacks else float("nan"),
        "recall_any": len(found_any) / attacks if attacks else float("nan"),
        "benign_events": len(benign),
        "fp_medium": fp_medium,
        "fp_low": fp_low,
        "fp_medium_per_10k": fp_medium * per_10k,
        "fp_low_per_10k": fp_low * per_10k,
        "negative_cases": len(negatives),
        "negative_alerted": {
            s: negative_alerted[s] for s in SEVERITY_ORDER if negative_alerted.get(s)
        },
        "negative_alerted_medium": sum(
            n for s, n in negative_alerted.items() if at_least_medium(s)
        ),
        "alerts": len(alerts),
        "missed": missed,
        "per_rule": {rule: tuple(counts) for rule, counts in sorted(per_rule.items())},
    }


def _unit_name(cases: Sequence[Case], indexes: list[int]) -> str:
    case = cases[indexes[0]]
    return f"{case.group} [{case.note}]" if case.note else case.group
