"""Counting distinct strings in bounded memory: exact while a shared budget lasts, then estimated.

``harvester scan`` counts distinct principals per account and region. A set of them grows
with the input (2 million principals cost hundreds of MB), so every counter of one scan draws
on one ``ExactBudget`` of strings; a counter that finds it spent gives its strings back and
goes on with a HyperLogLog sketch of 16 KB (standard error about 0.8%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DistinctCounter", "ExactBudget"]

_P = 14  # 2**14 registers
_M = 1 << _P
_REST = 64 - _P
_MASK = (1 << 64) - 1
_ALPHA = 0.7213 / (1 + 1.079 / _M)


@dataclass(slots=True)
class ExactBudget:
    """How many more strings the exact counters of one scan may keep."""

    left: int


class DistinctCounter:
    """How many distinct strings were added: exact, or estimated once the budget ran out."""

    __slots__ = ("_budget", "_exact", "_registers")

    def __init__(self, budget: ExactBudget) -> None:
        self._budget = budget
        self._exact: set[str] | None = set()
        self._registers: bytearray | None = None

    @property
    def estimated(self) -> bool:
        return self._exact is None

    def add(self, item: str) -> None:
        exact = self._exact
        if exact is not None:
            if item in exact:
                return
            if self._budget.left > 0:
                self._budget.left -= 1
                exact.add(item)
                return
            self._to_sketch(exact)
        self._register(item)

    def _to_sketch(self, exact: set[str]) -> None:
        self._registers = bytearray(_M)
        self._exact = None
        self._budget.left += len(exact)
        for item in exact:
            self._register(item)

    def _register(self, item: str) -> None:
        registers = self._registers
        assert registers is not None
        # str hashes are SipHash, uniform over 64 bits (salted per process: fine for a count).
        value = hash(item) & _MASK
        index = value >> _REST
        rank = _REST + 1 - (value & ((1 << _REST) - 1)).bit_length()
        registers[index] = max(registers[index], rank)

    def __len__(self) -> int:
        if self._exact is not None:
            return len(self._exact)
        registers = self._registers
        assert registers is not None
        estimate = _ALPHA * _M * _M / sum(2.0**-r for r in registers)
        zeros = registers.count(0)
        if estimate <= 2.5 * _M and zeros:
            estimate = _M * math.log(_M / zeros)  # small ranges: linear counting
        return round(estimate)
