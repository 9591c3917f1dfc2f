"""render_findings: the jsonl scripts read and the table people read."""

from __future__ import annotations

import io
from datetime import timedelta

import orjson
import pytest

from harvester.detect.incidents import build_incidents
from tests.unit.detect.builders import T0, ct, detect, scorer, sso

REQUIRED = {
    "type",
    "detector",
    "severity",
    "score",
    "title",
    "account_id",
    "cluster",
    "principal",
    "source_ip",
    "first_seen",
    "last_seen",
    "count",
    "event_ids",
    "mitre",
    "explanation",
}


def _findings() -> tuple[list[object], list[object]]:
    s = scorer()
    events = [
        ct("ListUsers", "iam", identity=sso(), error="AccessDenied", when=T0 + timedelta(seconds=i))
        for i in range(35)
    ]
    events.append(
        ct(
            "StopLogging",
            "cloudtrail",
            identity=sso(),
            params={"name": "t"},
            when=T0 + timedelta(minutes=20),
        )
    )
    anomalies = s.score_and_commit(events).anomalies
    return anomalies, build_incidents(anomalies)  # type: ignore[return-value]


def test_jsonl_has_one_object_per_line_with_every_field() -> None:
    from harvester.detect.render import render_findings

    anomalies, incidents = _findings()
    out = io.StringIO()
    render_findings(anomalies, incidents, "jsonl", out)  # type: ignore[arg-type]
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["anomaly", "anomaly", "incident"]
    for line in lines:
        assert line.keys() >= REQUIRED
        assert line["event_ids"]
        assert line["explanation"]
        assert line["first_seen"].endswith("Z")
    incident = lines[-1]
    assert set(incident["event_ids"]) == set(lines[0]["event_ids"]) | set(lines[1]["event_ids"])
    assert lines[0]["evidence"][0]["key"] == "AWSLogs/test.json.gz"


def test_table_and_json() -> None:
    from harvester.detect.render import render_findings

    anomalies, incidents = _findings()
    table = io.StringIO()
    render_findings(anomalies, incidents, "table", table)  # type: ignore[arg-type]
    text = table.getvalue()
    assert "Anomalies (2)" in text
    assert "Incidents (1)" in text
    assert "aws.cloudtrail-logging-impaired" in text
    as_json = io.StringIO()
    render_findings(anomalies, [], "json", as_json)  # type: ignore[arg-type]
    assert len(orjson.loads(as_json.getvalue())) == 2
    empty = io.StringIO()
    render_findings([], [], "table", empty)
    assert "no anomalies" in empty.getvalue()
    with pytest.raises(ValueError, match="unknown output format"):
        render_findings(detect(), [], "xml", io.StringIO())


def test_table_lists_the_worst_first() -> None:
    from harvester.detect.model import Severity
    from harvester.detect.render import render_findings

    anomalies, _ = _findings()
    assert len({a.severity for a in anomalies}) > 1  # type: ignore[attr-defined]
    out = io.StringIO()
    render_findings(anomalies, [], "table", stream=out)  # type: ignore[arg-type]
    shown = [
        line.split("│")[1].strip()
        for line in out.getvalue().splitlines()
        if line.startswith("│") and line.split("│")[1].strip() in set(Severity)
    ]
    ranks = [Severity(s).rank for s in shown]
    assert len(shown) == len(anomalies)
    assert ranks == sorted(ranks, reverse=True)
