"""The generated organization: deterministic, time-ordered, real record shapes, labelled."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

from harvester.synth.org import (
    ATTACKS,
    DEFAULT_START,
    by_source,
    default_org,
    delivery_windows,
    generate,
    to_event,
)


def _small(**kwargs: object) -> list[object]:
    return list(generate(days=2, scale=0.2, **kwargs))  # type: ignore[arg-type]


def test_same_seed_same_records_and_another_seed_differs() -> None:
    first = [r.record for r in itertools.islice(generate(seed=3, scale=0.2), 500)]
    again = [r.record for r in itertools.islice(generate(seed=3, scale=0.2), 500)]
    other = [r.record for r in itertools.islice(generate(seed=4, scale=0.2), 500)]
    assert first == again
    assert first != other


def test_records_are_time_ordered_and_normalize() -> None:
    records = _small(attacks=False)
    times = [r.time for r in records]
    assert times == sorted(times)
    assert times[0] >= DEFAULT_START
    assert times[-1] < DEFAULT_START + timedelta(days=2)
    kinds = Counter(r.kind for r in records)
    assert kinds["cloudtrail"] > 500
    assert kinds["k8s"] > 100
    events = [to_event(r, index=i) for i, r in enumerate(records)]
    assert len({e.id for e in events}) == len(events)
    assert {e.source for e in events} == {"cloudtrail", "eks"}
    assert all(
        abs(e.time - r.time) < timedelta(seconds=1) for e, r in zip(events, records, strict=True)
    )
    assert all(r.technique is None for r in records)


def test_the_organization_has_its_actors() -> None:
    org = default_org()
    assert len(org.accounts) >= 3
    assert org.cluster
    records = _small(attacks=False)
    principals = {to_event(r).principal.type for r in records}
    assert {
        "assumed_role",
        "iam_user",
        "aws_service",
        "web_identity_user",
        "k8s_user",
        "k8s_serviceaccount",
    } <= principals


def test_attacks_are_injected_on_their_day_and_labelled() -> None:
    attack = next(a for a in ATTACKS if a.id == "cloudtrail-stopped")
    records = list(generate(days=attack.day + 1, scale=0.05, attacks=[attack]))
    labelled = [r for r in records if r.technique]
    assert {r.technique for r in labelled} == {"cloudtrail-stopped"}
    assert labelled[0].record["eventName"] == "StopLogging"
    assert labelled[0].time.date() == (DEFAULT_START + timedelta(days=attack.day)).date()


def test_catalog_names_distinct_techniques_with_expectations() -> None:
    ids = [a.id for a in ATTACKS]
    assert len(ids) == len(set(ids)) >= 10
    assert all(a.expected and a.mitre for a in ATTACKS)


def test_sources_and_delivery_windows_for_a_demo_bucket() -> None:
    records = _small(attacks=False)
    sources = by_source(records)
    assert any(kind == "k8s" and cluster for kind, _, _, cluster in sources)
    assert sum(len(v) for v in sources.values()) == len(records)
    windows = list(delivery_windows(records, every=timedelta(minutes=5)))
    assert sum(len(batch) for _, _, batch in windows) == len(records)
    opened = [start for _, start, _ in windows]
    assert opened == sorted(opened)
    assert all(start.minute % 5 == 0 for start in opened)
