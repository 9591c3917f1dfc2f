"""The open rule packs on our data: ``python -m benchmarks.peers``.

SigmaHQ's CloudTrail and Kubernetes audit rules (parsed by pySigma, ``sigma.py``) and Panther's
CloudTrail, EKS and Kubernetes rules (run by ``panther-core``, ``panther.py``), from the snapshots
in ``<repo>/../shared/peers``, run on the corpora ``benchmarks.detection`` uses
(``benchmarks.peers.cases``) and on the generated organization, scored by ``scoring.py``.

``peer_figures(corpora)`` returns, for each corpus, the figures of each pack::

    {
      "<corpus name>": {
        "sigma" | "panther" | "panther+cache" | "panther+cache+enrichment": {
          "label": str,                 # how to print the pack's name
          "units": "attack events" | "techniques",
          "attacks": int,               # attack events (a corpus) or techniques (an org)
          "found_strict": int,          # found by the rule meant for it (see scoring.py)
          "found_any": int,             # found by any alert naming its events
          "recall_strict": float, "recall_any": float,
          "benign_events": int,
          "fp_medium": int,             # false positives of medium or more: benign events
          "fp_low": int,                #   alerted (a corpus) or all-benign alerts (an org);
          "fp_medium_per_10k": float,   #   fp_low counts low and info
          "fp_low_per_10k": float,
          "negative_cases": int,        # Panther negative test cases in the corpus
          "negative_alerted": {severity: int},  # of them alerted, by highest alert severity
          "negative_alerted_medium": int,
          "alerts": int,
          "missed": [str],              # attacks not found strictly
          "per_rule": {rule: (alerts naming attack events, all-benign alerts)},
          "errors": {rule: int},        # Panther rules that raised, per rule (Panther only)
        }
      }
    }

``panther`` runs the rules that need only Panther's engine; ``panther+cache`` adds the four
rules that need Panther's key-value cache, on an in-memory stand-in; ``panther+cache+enrichment``
adds the rules that decide on enrichment (IP ASN, Tor lists), run without any (see panther.py).

Corpora are named as in ``benchmarks.peers.cases.CORPORA``, ``"org"`` for the generated
organization (seed 7, 14 days), or given as ``(name, cases)`` (e.g.
``("org-check", org_cases(generate(...)))``); a corpus folder (a ``Path``) means all of them.
Cases that all carry a time are scored as one stream, others each alone.
``report.figure_lines(name, figures[name])`` renders one corpus as printed lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.peers.cases import CORPORA, CORPUS, Case, org_cases

PACKS = {
    "sigma": "SigmaHQ (pySigma)",
    "panther": "Panther (panther-core)",
    "panther+cache": "Panther + cache rules (in-memory)",
    "panther+cache+enrichment": "Panther + cache + enrichment rules (no data)",
}

CorpusSpec = str | tuple[str, Sequence[Case]]


def load_cases(spec: CorpusSpec, corpus: Path = CORPUS) -> tuple[str, Sequence[Case]]:
    """A corpus by name (or as given) and its cases."""
    if not isinstance(spec, str):
        return spec
    if spec == "org":
        from harvester.synth.org import generate

        return spec, org_cases(generate(seed=7, days=14))
    if spec not in CORPORA:
        known = ", ".join([*CORPORA, "org"])
        raise ValueError(f"unknown corpus {spec!r}; known: {known}")
    return spec, CORPORA[spec](corpus)


def pack_figures(
    cases: Sequence[Case], packs: Iterable[str] = tuple(PACKS)
) -> dict[str, dict[str, Any]]:
    """Each pack's figures on one set of cases."""
    from benchmarks.peers import panther, sigma
    from benchmarks.peers.scoring import score

    per_case = not all(c.time is not None for c in cases)
    if not per_case:
        cases = sorted(cases, key=lambda c: c.time)  # type: ignore[arg-type,return-value]
    chosen = tuple(packs)
    runs: dict[str, tuple[list[Any], dict[str, int]]] = {}
    if "sigma" in chosen:
        runs["sigma"] = (sigma.alerts(cases), {})
    variants = [p for p in chosen if p != "sigma"]
    if variants:
        runs.update(panther.alerts(cases, variants, per_case=per_case))
    out: dict[str, dict[str, Any]] = {}
    for pack in chosen:
        alerts, errors = runs[pack]
        figures = score(cases, alerts, pack=pack, per_case=per_case)
        figures.update(label=PACKS[pack], errors=errors)
        out[pack] = figures
    return out


def peer_figures(
    corpora: Iterable[CorpusSpec] | Path,
    *,
    corpus: Path = CORPUS,
    packs: Iterable[str] = tuple(PACKS),
) -> dict[str, dict[str, dict[str, Any]]]:
    """The peers' figures per corpus and pack (shape in the module docstring).

    ``corpora`` may also be a corpus folder: every corpus in it, then the generated organization.
    """
    if isinstance(corpora, Path):
        corpus, corpora = corpora, [*CORPORA, "org"]
    chosen = tuple(packs)
    unknown = set(chosen) - set(PACKS)
    if unknown:
        raise ValueError(f"unknown packs {sorted(unknown)}; known: {', '.join(PACKS)}")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in corpora:
        name, cases = load_cases(spec, corpus)
        out[name] = pack_figures(cases, chosen)
    return out
