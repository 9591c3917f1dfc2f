"""The coverage matrix is current, names real detectors, and every covered row is tested."""

from __future__ import annotations

from pathlib import Path

from harvester.detect.coverage import DOC, FINDING_TYPES, TECHNIQUES, covering, render
from harvester.detect.engine import DEFAULT_CATALOG

_TESTS = Path(__file__).parent


def test_docs_detections_is_current() -> None:
    expected = render(DEFAULT_CATALOG.specs())
    assert DOC.read_text() == expected, (
        "docs/detections.md is stale: run 'python -m harvester.detect.coverage > "
        "docs/detections.md'"
    )


def test_finding_types_name_detectors_of_the_catalog() -> None:
    known = {s.id for s in DEFAULT_CATALOG.specs()}
    unknown = {d for f in FINDING_TYPES for d in f.detectors if d not in known}
    assert unknown == set()
    assert all(f.detectors or f.why_not for f in FINDING_TYPES)


def test_every_observable_technique_is_covered_or_says_what_is_missing() -> None:
    specs = DEFAULT_CATALOG.specs()
    silent = [
        t.id for t in TECHNIQUES if not t.unobservable and not t.gap and not covering(t.id, specs)
    ]
    assert silent == []


def test_every_detector_that_covers_a_row_has_tests_with_events() -> None:
    specs = DEFAULT_CATALOG.specs()
    text = "\n".join(
        p.read_text() for p in _TESTS.glob("test_*.py") if p.name != Path(__file__).name
    )
    used = {d for t in TECHNIQUES for d in covering(t.id, specs)}
    used |= {d for f in FINDING_TYPES for d in f.detectors}
    untested = sorted(d for d in used if f'"{d}"' not in text)
    assert untested == []
