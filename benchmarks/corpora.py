"""The labelled data sets every detector is measured on, as raw records with their labels.

``benchmarks.detection`` normalizes these records for our scorer; ``benchmarks.peers`` hands
the same raw records to the open rule packs. One reader per data set, so both see the same
cases with the same labels:

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

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"

Kind = Literal["cloudtrail", "k8s"]
Label = Literal["attack", "benign", "other"]

# The falco traces carry falco rule names but no ATT&CK ids; these are the techniques the
# behaviour each rule names belongs to (ATT&CK Containers matrix), so packs that tag their
# rules with ATT&CK can be credited for the case they were meant for.
FALCO_TECHNIQUES: dict[str, tuple[str, ...]] = {
    "Anonymous Request Allowed": ("T1078.001", "T1190"),
    "Attach to cluster-admin Role": ("T1098",),
    "Attach/Exec Pod": ("T1609",),
    "ClusterRole With Pod Exec Created": ("T1098",),
    "ClusterRole With Wildcard Created": ("T1098",),
    "ClusterRole With Write Privileges Created": ("T1098",),
    "Create HostNetwork Pod": ("T1610", "T1611"),
    "Create NodePort Service": ("T1133",),
    "Create Privileged Pod": ("T1610", "T1611"),
    "Create Sensitive Mount Pod": ("T1610", "T1611"),
    "Create/Modify Configmap With Private Credentials": ("T1552", "T1552.007"),
    "Pod Created in Kube Namespace": ("T1610",),
    "Service Account Created in Kube Namespace": ("T1136",),
    "System ClusterRole Modified/Deleted": ("T1098",),
}


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
        out.append(
            Case(
                record=record,
                kind="cloudtrail" if kind == "cloudtrail" else "k8s",
                label=verdict,
                group=str(label.get("rule_id") or label.get("test_name") or "scenario"),
                note=str(label.get("test_name", "")),
                techniques=tuple(label.get("mitre_techniques") or ()),
                rule_id=label.get("rule_id"),
            )
        )
    return out


def falco_cases(corpus: Path = CORPUS) -> list[Case]:
    out: list[Case] = []
    for record, label in _paired(corpus / "falco-k8s-audit-traces", "events.jsonl", "labels.jsonl"):
        rules = label.get("falco_rules_default") or ["-"]
        techniques = tuple(t for rule in rules for t in FALCO_TECHNIQUES.get(rule, ()))
        out.append(
            Case(
                record=record,
                kind="k8s",
                label="attack" if label["label"] == "suspicious" else "benign",
                group=str(rules[0]),
                techniques=tuple(label.get("mitre_techniques") or ()) or techniques,
            )
        )
    return out


def otrf_cases(corpus: Path = CORPUS) -> list[Case]:
    out: list[Case] = []
    for record, label in _paired(corpus / "otrf-security-datasets", "events.jsonl", "labels.jsonl"):
        verdict: Label = {"malicious": "attack", "benign": "benign"}.get(label["label"], "other")  # type: ignore[assignment]
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
