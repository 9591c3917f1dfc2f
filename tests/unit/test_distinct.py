"""Distinct counts in bounded memory: exact within a shared budget, then a sketch."""

from __future__ import annotations

from harvester.distinct import DistinctCounter, ExactBudget


def test_exact_while_the_budget_lasts() -> None:
    budget = ExactBudget(10)
    counter = DistinctCounter(budget)
    for item in ["a", "b", "a", "c"]:
        counter.add(item)
    assert (len(counter), counter.estimated, budget.left) == (3, False, 7)


def test_counters_share_one_budget_and_give_it_back_when_they_estimate() -> None:
    budget = ExactBudget(100)
    small, big = DistinctCounter(budget), DistinctCounter(budget)
    for i in range(5):
        small.add(f"s{i}")
    for i in range(20_000):
        big.add(f"arn:aws:iam::111122223333:user/u{i}")
    assert big.estimated
    assert not small.estimated
    assert budget.left == 95  # big's exact strings went back to the pool
    assert abs(len(big) - 20_000) < 20_000 * 0.04
    for i in range(90):
        small.add(f"t{i}")
    assert (len(small), small.estimated) == (95, False)


def test_an_estimate_is_close_at_small_counts_too() -> None:
    counter = DistinctCounter(ExactBudget(0))
    for i in range(300):
        counter.add(f"p{i}")
        counter.add(f"p{i}")
    assert counter.estimated
    assert abs(len(counter) - 300) <= 6
