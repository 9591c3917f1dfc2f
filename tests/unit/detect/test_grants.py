"""Bindings to wildcard roles, remembered across batches."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.detect.builders import T0, k8s, scorer

_WILD = {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
_TAME = {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}


def _role(obj: dict[str, object], minutes: int = 0) -> object:
    return k8s(
        "create",
        "clusterroles",
        namespace=None,
        name="ops-all",
        obj=obj,
        when=T0 + timedelta(minutes=minutes),
    )


def _binding(minutes: int) -> object:
    return k8s(
        "create",
        "clusterrolebindings",
        namespace=None,
        name=f"ops-{minutes}",
        obj={
            "roleRef": {"kind": "ClusterRole", "name": "ops-all"},
            "subjects": [{"kind": "ServiceAccount", "name": "x", "namespace": "default"}],
        },
        when=T0 + timedelta(minutes=minutes),
    )


def _detectors(result: object) -> set[str]:
    return {a.detector for a in result.anomalies}  # type: ignore[attr-defined]


def test_binding_to_a_wildcard_role_written_in_an_earlier_batch() -> None:
    s = scorer()
    s.score_and_commit([_role(_WILD)])  # type: ignore[list-item]
    found = s.score_and_commit([_binding(60)])  # type: ignore[list-item]
    (anomaly,) = [a for a in found.anomalies if a.detector == "k8s.binding-to-wildcard-role"]
    assert "ops-all" in anomaly.explanation


def test_same_batch_and_tame_roles() -> None:
    assert "k8s.binding-to-wildcard-role" in _detectors(
        scorer().score_and_commit([_role(_WILD), _binding(5)])  # type: ignore[list-item]
    )
    assert "k8s.binding-to-wildcard-role" not in _detectors(
        scorer().score_and_commit([_role(_TAME), _binding(5)])  # type: ignore[list-item]
    )


def test_a_role_rewritten_without_wildcards_is_forgotten() -> None:
    s = scorer()
    s.score_and_commit([_role(_WILD)])  # type: ignore[list-item]
    s.score_and_commit(
        [
            k8s(
                "update",
                "clusterroles",
                namespace=None,
                name="ops-all",
                obj=_TAME,
                when=T0 + timedelta(minutes=10),
            )
        ]
    )
    assert "k8s.binding-to-wildcard-role" not in _detectors(
        s.score_and_commit([_binding(60)])  # type: ignore[list-item]
    )
