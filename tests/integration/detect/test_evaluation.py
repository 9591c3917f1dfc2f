"""The evaluation's looser bounds: what must hold whatever tuning comes next."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.detection import CORPORA, evaluate_corpus, evaluate_org
from harvester.detect.model import Severity

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_corpus_recall(shared_corpus: Path, name: str) -> None:
    result = evaluate_corpus(name, shared_corpus)
    assert result.attacks > 5
    assert result.recall >= 0.85, result.missed
    assert result.explained == result.anomalies


def test_generated_organization() -> None:
    result = evaluate_org(days=14, scale=0.5)
    missed = [t for t, found in result.techniques.items() if not found]
    assert missed == []
    assert result.benign_after_learning > 10_000
    # Habits are reported at info, with how often: they are not alerts.
    alerts = [a for a in result.benign_anomalies if a.severity is not Severity.info]
    assert len(alerts) * 10_000 / result.benign_after_learning <= 10, [
        a.explanation for a in alerts
    ]
    assert all(a.explanation and a.evidence for a in result.anomalies)
    assert any(len(i.anomaly_ids) >= 3 for i in result.incidents)
