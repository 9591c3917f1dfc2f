"""The peers' figures as printed lines, for ``python -m benchmarks.peers`` and beside ours."""

from __future__ import annotations

from typing import Any


def figure_lines(
    name: str, packs: dict[str, dict[str, Any]], *, verbose: bool = False
) -> list[str]:
    """One corpus: a row per pack (strict and any-alert recall, false positives), then notes."""
    out = [
        f"== {name}",
        f"   {'pack':46} {'strict':>9} {'any':>9} {'FP>=med':>8} {'/10k':>7} "
        f"{'FP low':>7} {'/10k':>7} {'neg.alerted':>11} {'alerts':>7}",
    ]
    for figures in packs.values():
        total = figures["attacks"]
        negatives = (
            f"{figures['negative_alerted_medium']}/{figures['negative_cases']}"
            if figures["negative_cases"]
            else "-"
        )
        out.append(
            f"   {figures['label']:46} {figures['found_strict']:>4}/{total:<4} "
            f"{figures['found_any']:>4}/{total:<4} {figures['fp_medium']:>8} "
            f"{figures['fp_medium_per_10k']:>7.1f} {figures['fp_low']:>7} "
            f"{figures['fp_low_per_10k']:>7.1f} {negatives:>11} {figures['alerts']:>7}"
        )
    first = next(iter(packs.values()))
    out.append(
        f"   ({first['units']}; {first['benign_events']} benign events; neg.alerted = Panther "
        "negative cases alerted at medium or more)"
    )
    for figures in packs.values():
        label = figures["label"]
        if figures["negative_alerted"]:
            by = ", ".join(f"{s} {n}" for s, n in figures["negative_alerted"].items())
            out.append(f"   {label}: negative cases alerted by severity: {by}")
        if figures["errors"]:
            errors = ", ".join(f"{r} {n}" for r, n in sorted(figures["errors"].items()))
            out.append(f"   {label}: rules that raised (events): {errors}")
        if not verbose:
            continue
        noisy = sorted(
            ((r, c) for r, c in figures["per_rule"].items() if c[1]), key=lambda kv: -kv[1][1]
        )
        if noisy:
            out.append(f"   {label}: rules with all-benign alerts:")
            out += [f"     - {rule}: {fp} benign, {tp} on attacks" for rule, (tp, fp) in noisy]
        if figures["missed"]:
            out.append(f"   {label}: missed (strict):")
            out += [f"     - {miss}" for miss in figures["missed"]]
    return out
