"""The labelled public corpora the detection evaluation reads (``<repo>/../shared/corpus``).

Each loader turns a folder into ``Labelled`` events: the normalized event, whether it is an
attack, benign, or neither (``other``: not counted), and its attack group (the upstream rule or
technique) that ``expected_detectors.yaml`` names the meant detectors for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harvester.events import Event, InvalidRecordError, normalize_cloudtrail, normalize_k8s

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


@dataclass(slots=True)
class Labelled:
    event: Event
    label: str  # "attack", "benign", or "other" (neither counted)
    group: str  # the upstream rule or technique, for the tables
    note: str = ""


def _scenario(label: dict[str, Any]) -> str | None:
    """Panther's multi-event scenarios: ``scenario:<folder>`` from the file they come from."""
    source = str(label.get("source_file") or "")
    if label.get("test_name") != "test_scenario" or "test_scenarios/" not in source:
        return None
    return "scenario:" + source.split("test_scenarios/", 1)[1].split("/", 1)[0]


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def _panther(kind: str, corpus: Path) -> tuple[list[Labelled], int]:
    folder = corpus / "panther-analysis"
    events = folder / f"{kind}.events.jsonl"
    labels = folder / f"{kind}.labels.jsonl"
    out: list[Labelled] = []
    skipped = 0
    for index, (record, label) in enumerate(zip(_lines(events), _lines(labels), strict=True)):
        try:
            if kind == "cloudtrail":
                event = normalize_cloudtrail(record, bucket="corpus", key=str(events), index=index)
            else:
                event = normalize_k8s(
                    record,
                    cluster="corpus",
                    account=None,
                    region=None,
                    bucket="corpus",
                    key=str(events),
                    index=index,
                )
        except InvalidRecordError:
            skipped += 1
            continue
        severity = label.get("rule_severity")
        if label["label"] == "malicious":
            # Info-severity upstream rules log activity worth keeping, not attacks.
            kind_label = "other" if severity == "Info" else "attack"
        else:
            kind_label = "benign"
        scenario = _scenario(label)
        group = label.get("rule_id") or scenario or label.get("test_name") or "-"
        note = label.get("test_key") if scenario else label.get("test_name")
        out.append(Labelled(event, kind_label, str(group), str(note or "")))
    return out, skipped


def _falco(corpus: Path) -> tuple[list[Labelled], int]:
    folder = corpus / "falco-k8s-audit-traces"
    out: list[Labelled] = []
    for index, (record, label) in enumerate(
        zip(_lines(folder / "events.jsonl"), _lines(folder / "labels.jsonl"), strict=True)
    ):
        event = normalize_k8s(
            record,
            cluster="corpus",
            account=None,
            region=None,
            bucket="corpus",
            key="falco/events.jsonl",
            index=index,
        )
        kind = "attack" if label["label"] == "suspicious" else "benign"
        rules = label.get("falco_rules_default") or ["-"]
        out.append(Labelled(event, kind, str(rules[0])))
    return out, 0


def _otrf(corpus: Path) -> tuple[list[Labelled], int]:
    folder = corpus / "otrf-security-datasets"
    out: list[Labelled] = []
    skipped = 0
    for index, (record, label) in enumerate(
        zip(_lines(folder / "events.jsonl"), _lines(folder / "labels.jsonl"), strict=True)
    ):
        kind = {"malicious": "attack", "benign": "benign"}.get(label["label"], "other")
        try:
            event = normalize_cloudtrail(record, bucket="corpus", key="otrf", index=index)
        except InvalidRecordError:
            skipped += 1
            continue
        out.append(Labelled(event, kind, str(label.get("technique") or label["label"])))
    return out, skipped


CORPORA: dict[str, Callable[[Path], tuple[list[Labelled], int]]] = {
    "panther-analysis/cloudtrail": lambda c: _panther("cloudtrail", c),
    "panther-analysis/k8s_audit": lambda c: _panther("k8s_audit", c),
    "falco-k8s-audit-traces": _falco,
    "otrf-security-datasets": _otrf,
}
