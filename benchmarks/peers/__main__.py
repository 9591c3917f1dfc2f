"""``python -m benchmarks.peers``: the open rule packs' recall and false positives on our data."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.corpora import CORPORA, CORPUS
from benchmarks.peers import PACKS, peer_figures


def print_figures(name: str, packs: dict[str, dict[str, Any]], *, verbose: bool) -> None:
    print(f"\n== {name}")
    print(
        f"   {'pack':40} {'strict':>9} {'any':>9} {'FP>=med':>8} {'/10k':>7} "
        f"{'FP low':>7} {'/10k':>7} {'neg.alerted':>11} {'alerts':>7}"
    )
    for figures in packs.values():
        total = figures["attacks"]
        negatives = (
            f"{figures['negative_alerted_medium']}/{figures['negative_cases']}"
            if figures["negative_cases"]
            else "-"
        )
        print(
            f"   {figures['label']:40} {figures['found_strict']:>4}/{total:<4} "
            f"{figures['found_any']:>4}/{total:<4} {figures['fp_medium']:>8} "
            f"{figures['fp_medium_per_10k']:>7.1f} {figures['fp_low']:>7} "
            f"{figures['fp_low_per_10k']:>7.1f} {negatives:>11} {figures['alerts']:>7}"
        )
    first = next(iter(packs.values()))
    print(
        f"   ({first['units']}; {first['benign_events']} benign events; neg.alerted = Panther "
        "negative cases alerted at medium or more)"
    )
    for figures in packs.values():
        if figures["negative_alerted"]:
            by = ", ".join(f"{s} {n}" for s, n in figures["negative_alerted"].items())
            print(f"   {figures['label']}: negative cases alerted by severity: {by}")
        if figures["errors"]:
            errors = ", ".join(f"{r} {n}" for r, n in sorted(figures["errors"].items()))
            print(f"   {figures['label']}: rules that raised (events): {errors}")
        if verbose:
            noisy = [(r, c) for r, c in figures["per_rule"].items() if c[1]]
            if noisy:
                print(f"   {figures['label']}: rules with all-benign alerts:")
                for rule, (tp, fp) in sorted(noisy, key=lambda kv: -kv[1][1]):
                    print(f"     - {rule}: {fp} benign, {tp} on attacks")
            if figures["missed"]:
                print(f"   {figures['label']}: missed (strict):")
                for miss in figures["missed"]:
                    print(f"     - {miss}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--only",
        action="append",
        choices=(*CORPORA, "org"),
        help="Corpora to run (repeatable); default all of them and the generated organization.",
    )
    parser.add_argument("--pack", action="append", choices=tuple(PACKS), help="Packs to run.")
    parser.add_argument("--verbose", "-v", action="store_true", help="List misses and noisy rules.")
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="Run Panther's own rule tests through the harness first (it is right when all pass).",
    )
    args = parser.parse_args(argv)
    if args.self_check:
        from benchmarks.peers import panther

        passed, failures = panther.run_rule_tests(panther.load_rules(), panther.load_data_models())
        print(f"Panther rule tests through the harness: {passed} passed, {len(failures)} failed")
        for failure in failures:
            print(f"  - {failure}")
    corpora = args.only or [*CORPORA, "org"]
    if not args.corpus.is_dir() and any(c != "org" for c in corpora):
        print(f"corpus not found at {args.corpus}; running on the generated organization only")
        corpora = ["org"]
    for name in corpora:
        figures = peer_figures([name], corpus=args.corpus, packs=args.pack or tuple(PACKS))
        print_figures(name, figures[name], verbose=args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
