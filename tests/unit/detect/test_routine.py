"""Baseline-aware severity: habits are info, first times keep the rule's severity."""

from __future__ import annotations

from datetime import timedelta

from harvester.detect.model import Anomaly, Severity
from harvester.detect.routine import grade, prior_days, with_day
from tests.unit.detect.builders import T0, k8s, scorer


def _exec(day: int, *, pod: str = "api-7d9f8b6c5-x2x9q", ip: str = "10.0.1.20", **kw: object):
    return k8s(
        "create",
        "pods",
        namespace="shop",
        name=pod,
        subresource="exec",
        code=101,
        ip=ip,
        when=T0 + timedelta(days=day, hours=10),
        **kw,
    )


def _pod_exec(anomalies: list[Anomaly]) -> list[Anomaly]:
    return [a for a in anomalies if a.detector == "k8s.pod-exec"]


def test_a_first_exec_keeps_the_rule_severity_and_a_daily_habit_becomes_info() -> None:
    s = scorer()
    first = _pod_exec(s.score_and_commit([_exec(0)]).anomalies)
    assert [a.severity for a in first] == [Severity.medium]
    second = _pod_exec(s.score_and_commit([_exec(1, pod="api-7d9f8b6c5-k8k2z")]).anomalies)
    assert [a.severity for a in second] == [Severity.low]
    for day in range(2, 9):
        s.score_and_commit([_exec(day)])
    habitual = _pod_exec(s.score_and_commit([_exec(9)]).anomalies)
    assert [a.severity for a in habitual] == [Severity.info]
    assert "Habitual: it did this on 9 of the last 14 days" in habitual[0].explanation


def test_repeats_in_a_day_fold_into_one_anomaly_whatever_the_pod() -> None:
    s = scorer()
    found = s.score_and_commit(
        [_exec(0, pod=f"worker-{n}") for n in range(5)] + [_exec(0, pod="api-1")]
    ).anomalies
    execs = _pod_exec(found)
    assert len(execs) == 1
    assert execs[0].count == 6


def test_a_habit_from_a_new_network_is_raised_back_to_the_rule_severity() -> None:
    s = scorer()
    for day in range(5):
        s.score_and_commit([_exec(day)])
    moved = _pod_exec(s.score_and_commit([_exec(5, ip="81.2.69.160")]).anomalies)
    assert [a.severity for a in moved] == [Severity.medium]
    assert "a network it never did it from (81.2.69.0/24)" in moved[0].explanation


def test_days_outside_the_window_are_forgotten() -> None:
    assert prior_days("100 101 110 120 121", 121) == [110, 120]
    assert with_day("100 110 120", 121) == "110 120 121"
    assert prior_days("junk 5", 6) == [5]


def test_grade_levels() -> None:
    common = {"new_network": False, "new_agent": False, "network": "n", "agent": "a"}
    assert grade(rule_severity=Severity.high, days=[], key_known=False, **common).severity is None
    assert grade(rule_severity=Severity.high, days=[1], key_known=True, **common).severity == (
        Severity.low
    )
    assert grade(
        rule_severity=Severity.high, days=[1, 2, 3], key_known=False, **common
    ).severity == (Severity.info)
    assert grade(rule_severity=Severity.info, days=[1], key_known=True, **common).severity == (
        Severity.info
    )
    moved = {**common, "new_network": True}
    assert (
        grade(rule_severity=Severity.high, days=[1, 2, 3], key_known=True, **moved).severity is None
    )
    once = grade(rule_severity=Severity.high, days=[1], key_known=True, **moved)
    assert once.severity == Severity.low
    assert "but this time from a network it never did it from (n)" in once.context
