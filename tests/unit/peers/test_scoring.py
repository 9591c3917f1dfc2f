"""Peer scoring: strict against any-alert recall, false positives per record or per alert."""

from __future__ import annotations

from benchmarks.peers.cases import Case
from benchmarks.peers.scoring import PeerAlert, score

EXPECTED = {"cloudtrail-stopped": {"sigma": ["Trail changed"], "panther": ["CT.Stopped"]}}


def _case(label: str, group: str, rule_id: str | None = None) -> Case:
    return Case({}, "cloudtrail", label, group, rule_id=rule_id)  # type: ignore[arg-type]


def test_strict_recall_credits_only_the_rule_meant_for_the_case() -> None:
    cases = [_case("attack", "cloudtrail-stopped"), _case("attack", "cloudtrail-stopped")]
    alerts = [PeerAlert("Trail changed", "medium", (0,)), PeerAlert("Any role used", "low", (1,))]
    figures = score(cases, alerts, pack="sigma", per_case=True, expected=EXPECTED)
    assert (figures["found_strict"], figures["found_any"], figures["attacks"]) == (1, 2, 2)


def test_a_panther_case_is_meant_for_its_own_rule_only() -> None:
    cases = [_case("attack", "CT.Stopped", rule_id="CT.Stopped"), _case("attack", "X", "X")]
    alerts = [PeerAlert("CT.Stopped", "high", (0,)), PeerAlert("CT.Stopped", "high", (1,))]
    figures = score(cases, alerts, pack="panther+cache", per_case=True, expected={})
    assert figures["found_strict"] == 1
    assert figures["missed"] == ["X"]


def test_per_case_false_positives_count_benign_records_at_their_worst_severity() -> None:
    cases = [
        _case("benign", "n", rule_id="R"),
        _case("benign", "n", rule_id="R"),
        _case("benign", "n"),
    ]
    alerts = [
        PeerAlert("a", "low", (0,)),
        PeerAlert("b", "high", (0,)),
        PeerAlert("c", "info", (1,)),
    ]
    figures = score(cases, alerts, pack="sigma", per_case=True, expected={})
    assert (figures["fp_medium"], figures["fp_low"]) == (1, 1)
    assert figures["fp_medium_per_10k"] == 10_000 / 3
    assert figures["negative_alerted"] == {"info": 1, "high": 1}
    assert figures["negative_alerted_medium"] == 1


def test_stream_scores_techniques_and_counts_all_benign_alerts() -> None:
    cases = [
        _case("benign", "normal"),
        _case("attack", "cloudtrail-stopped"),
        _case("benign", "normal"),
    ]
    alerts = [
        PeerAlert("CT.Stopped", "medium", (0, 1)),  # names an attack event: not a false positive
        PeerAlert("Noisy", "medium", (0, 2)),
        PeerAlert("Noisy", "info", (2,)),
    ]
    figures = score(cases, alerts, pack="panther", per_case=False, expected=EXPECTED)
    assert (figures["units"], figures["found_strict"], figures["attacks"]) == ("techniques", 1, 1)
    assert (figures["fp_medium"], figures["fp_low"]) == (1, 1)
    assert figures["per_rule"] == {"CT.Stopped": (1, 0), "Noisy": (0, 2)}
