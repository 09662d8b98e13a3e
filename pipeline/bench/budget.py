"""A wall-time budget for a sequence of benchmark items, run in priority order.

An item is refused (and the output says why, naming the budget key) when

- the budget is already spent, or
- its projected time does not fit what is left. The projection is (seconds per unit of work of the last
  *large* item measured) × the new item's units. Items smaller than `min_units` never set the rate: their
  time is dominated by per-call overhead (and, on a shared machine, by scheduling noise), so scaling them up
  would refuse every realistic shape.

The first item always runs; the overrun is at most one item, whose size the caller bounds separately.
"""
from __future__ import annotations

import time
from typing import Callable


class TimeBudget:
    """Admit or refuse work items against `seconds` of wall time (named `key` in messages)."""

    def __init__(self, seconds: float | None, key: str, min_units: float = 0.0,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError(f"{key} must be positive, got {seconds}")
        self.seconds, self.key, self.min_units, self.clock = seconds, key, min_units, clock
        self.start = clock()
        self.rate: float | None = None  # seconds per unit of the last large item

    def remaining(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - (self.clock() - self.start)

    def refusal(self, units: float) -> str | None:
        """None when an item of `units` may run, else the reason to skip it."""
        if self.seconds is None:
            return None
        left = self.remaining()
        if left <= 0:
            return f"{self.key} = {self.seconds:.0f} s already spent"
        if self.rate is None:
            return None
        projected = self.rate * units
        if projected <= left:
            return None
        return f"projected {projected:.0f} s > {left:.0f} s left of {self.key} = {self.seconds:.0f} s"

    def record(self, units: float, seconds: float) -> None:
        """Remember the cost of the item just measured (sets the rate only for items of >= min_units)."""
        if units > 0 and units >= self.min_units:
            self.rate = seconds / units
