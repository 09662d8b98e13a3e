"""Interleaved timing: every case is measured in the same process, round-robin over cases per repeat.

Interleaving (case A, B, C, A, B, C, ...) spreads slow drifts of the machine (thermal state, other processes
on the 2 shared cores) evenly over all cases, so the *ratios* between cases stay meaningful even when the
absolute numbers wander. The start of each round is rotated so no case always runs right after the same one.
The statistic is the median over repeats (robust to one-off stalls).

On CPU a case is timed with a wall clock (`time.perf_counter`, injectable for tests); on CUDA with
`torch.cuda.Event` pairs around the call followed by a synchronise.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch

Clock = Callable[[], float]


@dataclass
class TimingResult:
    """Per-case samples in seconds, in measurement order, and their median."""

    samples: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        if not self.samples:
            raise ValueError("no timing samples recorded")
        return float(statistics.median(self.samples))

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "samples_s": [float(s) for s in self.samples]}


class WallTimer:
    """Times a call with a wall clock; `sync` (e.g. torch.cuda.synchronize) runs before reading the clock."""

    def __init__(self, clock: Clock = time.perf_counter, sync: Callable[[], None] | None = None) -> None:
        self.clock, self.sync = clock, sync

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.sync is not None:
            self.sync()
        start = self.clock()
        fn()
        if self.sync is not None:
            self.sync()
        return self.clock() - start


class CudaEventTimer:
    """Times a call on the current CUDA stream with a pair of `torch.cuda.Event`s (seconds)."""

    def __call__(self, fn: Callable[[], Any]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0


def timer_for(device: torch.device | str) -> Callable[[Callable[[], Any]], float]:
    """The timer appropriate for `device`: CUDA events on a GPU, the wall clock otherwise."""
    return CudaEventTimer() if torch.device(device).type == "cuda" else WallTimer()


def round_robin_order(names: list[str], repeat_index: int) -> list[str]:
    """The order of one round: `names` rotated left by `repeat_index` (so starts cycle through cases)."""
    if not names:
        return []
    shift = repeat_index % len(names)
    return names[shift:] + names[:shift]


def interleaved_medians(cases: Mapping[str, Callable[[], Any]], repeats: int,
                        timer: Callable[[Callable[[], Any]], float] | None = None,
                        warmup: int = 1) -> dict[str, TimingResult]:
    """Time every case `repeats` times, round-robin; return each case's samples (median via `.median_s`).

    Args:
        cases: name -> zero-argument callable (it must do the whole measured work, e.g. forward+backward).
        repeats: timed rounds (>= 1).
        timer: callable(fn) -> seconds. Default: `WallTimer()`.
        warmup: untimed rounds run first (same interleaving), e.g. to fill allocator caches.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    timer = timer or WallTimer()
    names = list(cases)
    for w in range(warmup):
        for name in round_robin_order(names, w):
            cases[name]()
    results = {name: TimingResult() for name in names}
    for r in range(repeats):
        for name in round_robin_order(names, r):
            results[name].samples.append(float(timer(cases[name])))
    return results


@contextlib.contextmanager
def thread_count(n: int | None) -> Iterator[None]:
    """`torch.set_num_threads(n)` inside the block (None: leave as is), the previous count restored after."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
