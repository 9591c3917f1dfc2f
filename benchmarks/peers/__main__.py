"""``python -m benchmarks.peers``: the open rule packs' recall and false positives on our data."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.peers import PACKS, peer_figures
from benchmarks.peers.cases import CORPORA, CORPUS
from benchmarks.peers.report import figure_lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The open rule packs (SigmaHQ, Panther) on our corpora and generated "
        "organization: strict and any-alert recall, false positives by severity."
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=CORPUS,
        help="The shared corpus folder (default: %(default)s).",
    )
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
        print()
        print("\n".join(figure_lines(name, figures[name], verbose=args.verbose)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
