"""Routing is pure: filters, and which change of a finding is news for a destination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harvester.detect.model import Severity
from harvester.notify.model import DestinationSpec
from harvester.notify.routing import Change, Finding, Sent, route

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _finding(change: Change = "new", severity: Severity = Severity.high, **more: object) -> Finding:
    values: dict[str, object] = {
        "kind": "anomaly",
        "subject_id": "an-1",
        "change": change,
        "severity": severity,
        "detector": "cloudtrail.stop-logging",
        "account_ids": ("111122223333",),
        "clusters": (),
        "status": "open",
        "record": {"id": "an-1"},
    }
    values.update(more)
    return Finding(**values)  # type: ignore[arg-type]


def _dest(**more: object) -> DestinationSpec:
    return DestinationSpec(name="d", type="webhook", url="http://127.0.0.1/", **more)  # type: ignore[arg-type]


def _events(finding: Finding, dest: DestinationSpec, last: Sent | None = None) -> list[str]:
    sent = {(finding.subject_id, dest.name): last} if last else {}
    return [r.event for r in route([finding], [dest], last_sent=sent, now=NOW)]


def test_filters() -> None:
    assert _events(_finding(), _dest()) == ["new"]
    assert _events(_finding(severity=Severity.low), _dest()) == []  # default min_severity medium
    assert _events(_finding(), _dest(min_severity=Severity.critical)) == []
    assert _events(_finding(), _dest(kinds=("incident",))) == []
    assert _events(_finding(), _dest(detectors=("cloudtrail.*",))) == ["new"]
    assert _events(_finding(), _dest(detectors=("eks.*",))) == []
    assert _events(_finding(), _dest(accounts=("999988887777",))) == []
    assert _events(_finding(), _dest(accounts=("111122223333",))) == ["new"]
    assert _events(_finding(), _dest(clusters=("prod",))) == []
    assert _events(_finding(clusters=("prod",)), _dest(clusters=("prod",))) == ["new"]
    assert _events(_finding(), _dest(enabled=False)) == []


def test_a_repeat_is_not_news_a_rise_is_and_open_findings_are_renotified() -> None:
    recent = Sent(at=NOW - timedelta(hours=1), severity_rank=Severity.high.rank)
    old = Sent(at=NOW - timedelta(hours=25), severity_rank=Severity.high.rank)
    assert _events(_finding("repeat"), _dest(), recent) == []
    assert _events(_finding("repeat"), _dest()) == []  # never sent: not news either
    assert _events(_finding("new"), _dest(), recent) == []  # a redo finds its own row
    assert _events(_finding("repeat", Severity.critical), _dest(), recent) == ["escalated"]
    assert _events(_finding("escalated", Severity.medium), _dest()) == ["escalated"]
    assert _events(_finding("repeat"), _dest(), old) == ["renotify"]
    assert _events(_finding("repeat", status="acked"), _dest(), old) == []
    assert _events(_finding("repeat"), _dest(renotify_after=timedelta(hours=48)), old) == []


def test_an_acknowledgement_goes_only_where_the_finding_went() -> None:
    recent = Sent(at=NOW, severity_rank=Severity.high.rank)
    assert _events(_finding("acknowledged", status="acked"), _dest(), recent) == ["acknowledged"]
    assert _events(_finding("acknowledged", status="acked"), _dest()) == []
