"""The labelled data sets, as raw records with their labels, for the peers' rule engines.

``benchmarks.detection`` scores normalized events; the peers need the raw records. The labels
and attack groups are the ones ``benchmarks.detection`` gives the same records (so one table
of attack groups serves both):

- ``panther-analysis/cloudtrail`` and ``panther-analysis/k8s_audit``: the example events of
  Panther's rule tests (``<repo>/../shared/corpus``). A positive of an Info-severity rule is
  ``other`` (activity worth logging, not an attack); a negative is ``benign``.
- ``falco-k8s-audit-traces``: ``suspicious`` traces are attacks; benign and benign-info are benign.
- ``otrf-security-datasets``: ``malicious`` / ``benign``; the honey-bucket rows are ``other``.
- a generated organization (``org_cases``): records injected by an attack technique are attacks,
  everything else benign.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"

Kind = Literal["cloudtrail", "k8s"]
Label = str  # "attack", "benign", or "other" (neither counted)


@dataclass(frozen=True, slots=True)
class Case:
    """One raw record with its label.

    ``group`` names what the label is about (the upstream rule, falco rule or technique):
    cases of one group are one attack. ``rule_id`` is the Panther rule whose test the record
    comes from (panther-analysis only); ``techniques`` are ATT&CK ids.
    """

    record: dict[str, Any]
    kind: Kind
    label: Label
    group: str
    note: str = ""
    techniques: tuple[str, ...] = ()
    rule_id: str | None = None
    time: datetime | None = None


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, blank lines skipped."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def _paired(folder: Path, events: str, labels: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    return zip(read_lines(folder / events), read_lines(folder / labels), strict=True)


def _scenario(label: dict[str, Any]) -> str | None:
    """Panther's multi-event scenarios: ``scenario:<folder>`` from the file they come from."""
    source = str(label.get("source_file") or "")
    if label.get("test_name") != "test_scenario" or "test_scenarios/" not in source:
        return None
    return "scenario:" + source.split("test_scenarios/", 1)[1].split("/", 1)[0]


def panther_cases(kind: Literal["cloudtrail", "k8s_audit"], corpus: Path = CORPUS) -> list[Case]:
    out: list[Case] = []
    for record, label in _paired(
        corpus / "panther-analysis", f"{kind}.events.jsonl", f"{kind}.labels.jsonl"
    ):
        if label["label"] == "malicious":
            # Info-severity upstream rules log activity worth keeping, not attacks.
            verdict: Label = "other" if label.get("rule_severity") == "Info" else "attack"
        else:
            verdict = "benign"
        scenario = _scenario(label)
        out.append(
            Case(
                record=record,
                kind="cloudtrail" if kind == "cloudtrail" else "k8s",
                label=verdict,
                group=str(label.get("rule_id") or scenario or label.get("test_name") or "-"),
                note=str((label.get("test_key") if scenario else label.get("test_name")) or ""),
                techniques=tuple(label.get("mitre_techniques") or ()),
                rule_id=label.get("rule_id"),
            )
        )
    return out


def falco_cases(corpus: Path = CORPUS) -> list[Case]:
    out: list[Case] = []
    for record, label in _paired(corpus / "falco-k8s-audit-traces", "events.jsonl", "labels.jsonl"):
        rules = label.get("falco_rules_default") or ["-"]
        out.append(
            Case(
                record=record,
                kind="k8s",
                label="attack" if label["label"] == "suspicious" else "benign",
                group=str(rules[0]),
                techniques=tuple(label.get("mitre_techniques") or ()),
            )
        )
    return out


def otrf_cases(corpus: Path = CORPUS) -> list[Case]:
    out: list[Case] = []
    for record, label in _paired(corpus / "otrf-security-datasets", "events.jsonl", "labels.jsonl"):
        verdict: Label = {"malicious": "attack", "benign": "benign"}.get(label["label"], "other")
        out.append(
            Case(
                record=record,
                kind="cloudtrail",
                label=verdict,
                group=str(label.get("technique") or label["label"]),
                techniques=tuple(label.get("mitre_techniques") or ()),
            )
        )
    return out


CORPORA: dict[str, Callable[[Path], list[Case]]] = {
    "panther-analysis/cloudtrail": lambda c: panther_cases("cloudtrail", c),
    "panther-analysis/k8s_audit": lambda c: panther_cases("k8s_audit", c),
    "falco-k8s-audit-traces": falco_cases,
    "otrf-security-datasets": otrf_cases,
}


def org_cases(records: Iterable[Any]) -> list[Case]:
    """Cases from ``harvester.synth.org`` records (``OrgRecord``), in their time order."""
    from harvester.synth.org import ATTACKS

    mitre = {a.id: a.mitre for a in ATTACKS}
    return [
        Case(
            record=r.record,
            kind=r.kind,
            label="attack" if r.technique else "benign",
            group=r.technique or "normal",
            techniques=mitre.get(r.technique, ()) if r.technique else (),
            time=r.time,
        )
        for r in records
    ]
