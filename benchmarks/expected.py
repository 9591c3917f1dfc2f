"""The detectors meant to find each labelled attack group: ``expected_detectors.yaml``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXPECTED_FILE = Path(__file__).with_name("expected_detectors.yaml")


class ExpectedError(ValueError):
    """The file is malformed or names a detector nobody has declared."""


@dataclass(frozen=True, slots=True)
class Expected:
    """Per evaluation set, per attack group, the detectors meant to find it."""

    sets: Mapping[str, Mapping[str, tuple[str, ...]]]
    planned: frozenset[str]

    def meant(self, name: str, group: str) -> tuple[str, ...] | None:
        """The detectors meant for ``group`` of set ``name``; None when it is not declared."""
        return self.sets.get(name, {}).get(group)

    def undeclared(self, name: str, groups: Iterable[str]) -> list[str]:
        declared = self.sets.get(name, {})
        return sorted({g for g in groups if g not in declared})

    def unknown_detectors(self, known: Iterable[str]) -> list[str]:
        """Declared ids that are neither in the catalog (``known``) nor planned."""
        allowed = frozenset(known) | self.planned
        named = {d for groups in self.sets.values() for ds in groups.values() for d in ds}
        return sorted(named - allowed)


def load_expected(path: Path = EXPECTED_FILE) -> Expected:
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ExpectedError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise ExpectedError(f"{path}: expected a mapping with 'sets' (and 'planned')")
    sets: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, groups in data["sets"].items():
        if not isinstance(groups, dict):
            raise ExpectedError(f"{path}: set {name!r} must map attack groups to detector lists")
        sets[str(name)] = {}
        for group, detectors in groups.items():
            if not isinstance(detectors, list) or not all(isinstance(d, str) for d in detectors):
                raise ExpectedError(
                    f"{path}: {name} / {group}: give a list of detector ids ([] if none is meant)"
                )
            sets[str(name)][str(group)] = tuple(detectors)
    return Expected(sets=sets, planned=frozenset(data.get("planned") or ()))
