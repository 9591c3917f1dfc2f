"""Anomalies and incidents for people (a table) and for scripts (JSON lines).

``finding_record`` is the one flat shape both the CLI's ``--output json`` and ``harvester
scan --output jsonl`` print, so a script written against one reads the other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from rich.console import Console
from rich.table import Table

from harvester.detect.model import Anomaly, Incident, Severity
from harvester.terminal import cell

__all__ = [
    "FINDING_COLUMNS",
    "anomaly_record",
    "incident_record",
    "render_findings",
]

FINDING_COLUMNS = (
    "severity",
    "score",
    "detector",
    "title",
    "principal",
    "account_id",
    "cluster",
    "first_seen",
    "count",
    "id",
)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def anomaly_record(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "type": "anomaly",
        "id": anomaly.id,
        "detector": anomaly.detector,
        "detector_version": anomaly.detector_version,
        "severity": anomaly.severity.value,
        "score": anomaly.score,
        "title": anomaly.title,
        "account_id": anomaly.account_id,
        "region": anomaly.region,
        "cluster": anomaly.cluster,
        "principal": anomaly.principal,
        "identity": anomaly.identity,
        "source_ip": anomaly.source_ip,
        "first_seen": _iso(anomaly.first_seen),
        "last_seen": _iso(anomaly.last_seen),
        "count": anomaly.count,
        "event_ids": anomaly.event_ids,
        "evidence": [
            {
                "event_id": e.event_id,
                "time": _iso(e.time),
                "source": e.source,
                "action": e.action,
                "bucket": e.bucket,
                "key": e.key,
                "index": e.index,
            }
            for e in anomaly.evidence
        ],
        "mitre": {
            "tactics": list(anomaly.mitre_tactics),
            "techniques": list(anomaly.mitre_techniques),
        },
        "explanation": anomaly.explanation,
        "status": anomaly.status,
        "dedup_key": anomaly.dedup_key,
    }


def incident_record(
    incident: Incident, anomalies: Mapping[str, Anomaly] | None = None
) -> dict[str, Any]:
    members = [anomalies[i] for i in incident.anomaly_ids if anomalies and i in anomalies]
    event_ids: list[str] = []
    techniques: list[str] = []
    ips: list[str] = []
    for anomaly in members:
        event_ids.extend(e for e in anomaly.event_ids if e not in event_ids)
        techniques.extend(t for t in anomaly.mitre_techniques if t not in techniques)
        if anomaly.source_ip and anomaly.source_ip not in ips:
            ips.append(anomaly.source_ip)
    return {
        "type": "incident",
        "id": incident.id,
        "detector": "incident.attack-chain",
        "severity": incident.severity.value,
        "score": incident.score,
        "title": incident.title,
        "account_id": ",".join(incident.account_ids) or None,
        "account_ids": list(incident.account_ids),
        "cluster": ",".join(incident.clusters) or None,
        "principal": incident.identity,
        "identity": incident.identity,
        "source_ip": ips[0] if ips else None,
        "first_seen": _iso(incident.first_seen),
        "last_seen": _iso(incident.last_seen),
        "count": len(incident.anomaly_ids),
        "anomaly_ids": list(incident.anomaly_ids),
        "event_ids": event_ids,
        "mitre": {"tactics": list(incident.tactics), "techniques": techniques},
        "explanation": incident.explanation,
        "status": incident.status,
    }


def _records(anomalies: Iterable[Anomaly], incidents: Iterable[Incident]) -> list[dict[str, Any]]:
    by_id = {a.id: a for a in anomalies}
    ordered = sorted(by_id.values(), key=lambda a: (a.first_seen, a.detector))
    out = [anomaly_record(a) for a in ordered]
    out.extend(incident_record(i, by_id) for i in sorted(incidents, key=lambda i: i.first_seen))
    return out


def _cell(record: Mapping[str, Any], column: str) -> str:
    value = record.get(column)
    if value is None:
        return ""
    if column == "first_seen":
        return str(value).replace("T", " ")[:19]
    if column == "principal":
        text = str(value)
        return text if len(text) <= 60 else "…" + text[-59:]
    return str(value)


def _severity_rank(value: object) -> int:
    try:
        return Severity.parse(str(value)).rank
    except ValueError:
        return -1


_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": ""}


def render_findings(
    anomalies: Sequence[Anomaly],
    incidents: Sequence[Incident],
    fmt: str = "table",
    stream: IO[str] | None = None,
) -> None:
    """Print anomalies and incidents: ``table``, ``jsonl`` (one object per line) or ``json``."""
    out = stream if stream is not None else sys.stdout
    records = _records(anomalies, incidents)
    kind = str(fmt).lower()
    if kind == "jsonl":
        for record in records:
            out.write(orjson.dumps(record).decode() + "\n")
        return
    if kind == "json":
        out.write(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if kind != "table":
        raise ValueError(f"unknown output format {fmt!r} (use table, json or jsonl)")
    width = None if getattr(out, "isatty", lambda: False)() else 240
    console = Console(file=out, highlight=False, soft_wrap=False, width=width)
    if not records:
        console.print("no anomalies")
        return
    for kind_name, title in (("anomaly", "Anomalies"), ("incident", "Incidents")):
        rows = [r for r in records if r["type"] == kind_name]
        if not rows:
            continue
        # People read the worst first: severity, then newest first (as `anomalies list`).
        rows.sort(key=lambda r: str(r.get("first_seen") or ""), reverse=True)
        rows.sort(key=lambda r: _severity_rank(r.get("severity")), reverse=True)
        table = Table(title=f"{title} ({len(rows)})", header_style="bold")
        for column in FINDING_COLUMNS:
            table.add_column(column, overflow="fold")
        for record in rows:
            style = _STYLE.get(str(record["severity"]), "")
            table.add_row(*(cell(_cell(record, c)) for c in FINDING_COLUMNS), style=style)
        console.print(table)
