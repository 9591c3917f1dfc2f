"""The detection evaluation's arithmetic: strict credit, false-positive rates, the expected file."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.detection import (
    CorpusResult,
    FalsePositives,
    OrgResult,
    _count_attack,
)
from benchmarks.expected import Expected, ExpectedError, load_expected
from benchmarks.peers.cases import Case
from harvester.detect.model import Anomaly, Evidence, Severity

WHEN = datetime(2026, 3, 2, tzinfo=UTC)


def _anomaly(detector: str, severity: Severity = Severity.high) -> Anomaly:
    return Anomaly(
        id=detector,
        dedup_key=detector,
        detector=detector,
        detector_version=1,
        title=detector,
        severity=severity,
        score=50,
        account_id=None,
        region=None,
        cluster=None,
        principal=None,
        identity=None,
        source_ip=None,
        first_seen=WHEN,
        last_seen=WHEN,
        count=1,
        explanation="why",
        evidence=(
            Evidence(
                event_id="e",
                time=WHEN,
                source="cloudtrail",
                action="a",
                bucket="b",
                key="k",
                index=0,
            ),
        ),
        mitre_tactics=("TA0001",),
        mitre_techniques=(),
    )


EXPECTED = Expected(
    sets={"set": {"Root.Login": ("aws.root-activity",), "Blocklist": ()}}, planned=frozenset()
)


def _case(group: str) -> Case:
    return Case(record={}, kind="cloudtrail", label="attack", group=group, note="n")


def test_an_alert_from_a_detector_not_meant_for_the_attack_is_not_strict() -> None:
    result = CorpusResult("set")
    _count_attack(
        result, _case("Root.Login"), [_anomaly("aws.console-login-without-mfa")], EXPECTED
    )
    _count_attack(result, _case("Root.Login"), [_anomaly("aws.root-activity")], EXPECTED)
    assert (result.attacks, result.any_alert, result.strict) == (2, 2, 1)
    assert result.strict_misses == {"Root.Login": ["n (alerted by aws.console-login-without-mfa)"]}


def test_an_uncovered_or_undeclared_group_is_a_miss() -> None:
    result = CorpusResult("set")
    _count_attack(result, _case("Blocklist"), [_anomaly("aws.root-activity")], EXPECTED)
    _count_attack(result, _case("Unknown.Rule"), [_anomaly("aws.root-activity")], EXPECTED)
    assert result.strict == 0
    assert result.any_alert == 2
    assert result.undeclared == {"Unknown.Rule"}


def test_false_positive_rates_use_the_learning_window_only_for_detectors_that_learn() -> None:
    fp = FalsePositives()
    fp.add([_anomaly("rule.x"), _anomaly("behav.y"), _anomaly("behav.y", Severity.low)])
    assert fp.alerts == Counter({"behav.y": 2, "rule.x": 1})
    assert fp.medium == Counter({"behav.y": 1, "rule.x": 1})
    result = OrgResult(
        name="org",
        purpose="tuning",
        events=30_000,
        benign=20_000,
        benign_after_learning=10_000,
        attack_events=0,
        anomalies=[],
        incidents=[],
        found={},
        meant={},
        fp=fp,
        false_positives=[],
        learns={"rule.x": False, "behav.y": True},
        unexplained=0,
        seconds=0.0,
    )
    # rule.x: 1 in all 20,000 benign events; behav.y: in the 10,000 after learning.
    assert result.rates(medium=False) == {"rule.x": 0.5, "behav.y": 2.0}
    assert result.fp_per_10k(medium=True) == 1.5


def test_the_expected_file_declares_lists_and_malformed_files_say_what_to_fix(
    tmp_path: Path,
) -> None:
    expected = load_expected()
    assert expected.meant("panther-analysis/cloudtrail", "AWS.Root.Activity") == (
        "aws.root-activity",
    )
    bad = tmp_path / "expected.yaml"
    bad.write_text("sets:\n  corpus:\n    Some.Rule: aws.root-activity\n")
    with pytest.raises(ExpectedError, match=r"corpus / Some.Rule: give a list of detector ids"):
        load_expected(bad)
