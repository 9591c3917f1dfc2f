"""expected.yaml names only rules that exist in the snapshots (a typo would silently cost recall)."""

from __future__ import annotations

import re

from benchmarks.peers import panther, sigma
from benchmarks.peers.scoring import load_expected


def _names(files: list[str], pattern: str) -> set[str]:
    # The rules' declared names, read from their YAML headers (loading every rule takes seconds).
    found = (re.search(pattern, text, re.MULTILINE) for text in files)
    return {m.group(1).strip().strip("\"'") for m in found if m}


def test_every_rule_meant_for_an_attack_exists(
    panther_snapshot: None, sigma_snapshot: None
) -> None:
    panther_files = [
        p.read_text(encoding="utf-8")
        for folder in panther.RULE_FOLDERS
        for p in (panther.ROOT / "rules" / folder).glob("*.yml")
    ]
    sigma_files = [
        p.read_text(encoding="utf-8")
        for folder in sigma.FOLDERS
        for p in (sigma.RULES / folder).rglob("*.yml")
    ]
    known = {
        "sigma": _names(sigma_files, r"^title:(.+)$"),
        "panther": _names(panther_files, r"^RuleID:(.+)$"),
    }
    unknown = [
        (group, pack, rule)
        for group, packs in load_expected().items()
        for pack, rules in packs.items()
        for rule in rules
        if rule not in known.get(pack, set())
    ]
    assert len(known["sigma"]) > 50
    assert unknown == []
