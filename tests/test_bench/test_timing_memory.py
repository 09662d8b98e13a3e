"""The interleaving/median logic on a fake clock, and the CPU peak-memory tracker on known allocations."""
from __future__ import annotations

import pytest
import torch

from pipeline.bench.budget import TimeBudget
from pipeline.bench.memory import LiveStorageTracker, peak_memory_cpu
from pipeline.bench.timing import WallTimer, interleaved_medians, round_robin_order


class FakeClock:
    """A clock that only moves when a case 'runs': each case advances it by its scripted durations."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        return self.now

    def case(self, name: str, durations: list[float]):
        script = iter(durations)

        def run() -> None:
            self.log.append(name)
            self.now += next(script)
        return run


def test_round_robin_rotates_the_start_each_round() -> None:
    assert round_robin_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert round_robin_order(["a", "b", "c"], 1) == ["b", "c", "a"]
    assert round_robin_order(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert round_robin_order([], 3) == []


def test_interleaved_medians_on_a_fake_clock() -> None:
    clock = FakeClock()
    # warm-up call first (duration 100, must be ignored), then five timed calls with one outlier each.
    cases = {"a": clock.case("a", [100, 1, 9, 2, 3, 50]), "b": clock.case("b", [100, 10, 30, 20, 40, 11]),
             "c": clock.case("c", [100, 5, 5, 5, 5, 5])}
    results = interleaved_medians(cases, repeats=5, timer=WallTimer(clock=clock), warmup=1)
    assert results["a"].samples == [1, 9, 2, 3, 50]
    assert results["a"].median_s == 3
    assert results["b"].median_s == 20
    assert results["c"].median_s == 5
    # one warm-up round (a, b, c), then five timed rounds whose start rotates: a, b, c, a, b
    assert clock.log[:3] == ["a", "b", "c"]
    assert clock.log[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c", "b", "c", "a"]


def test_interleaved_medians_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="repeats"):
        interleaved_medians({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        interleaved_medians({"a": lambda: None}, repeats=1, warmup=-1)


def test_tracker_peak_counts_live_storages_only() -> None:
    def work() -> torch.Tensor:
        a = torch.ones(1000)           # 4000 B
        b = torch.ones(2000)           # 8000 B, live with a: 12000
        del a, b
        c = torch.ones(500)            # 2000 B
        return c.view(-1)[:10]         # a view: no new memory

    assert peak_memory_cpu(work).peak_bytes == 12000


def test_tracker_ignores_views_and_in_place_ops_on_existing_tensors() -> None:
    x = torch.randn(10, 100)
    with LiveStorageTracker() as tracker:
        x.view(-1).add_(1)
        x[:, :5].unsqueeze(0).split(1, dim=0)
    assert tracker.peak_bytes == 0
    with LiveStorageTracker() as tracker:
        y = x * 2
        assert tracker.live_bytes == x.numel() * 4
        del y
    assert tracker.live_bytes == 0


def test_tracker_counts_saved_tensors_and_gradients() -> None:
    x = torch.randn(1000, requires_grad=True)

    def step() -> None:
        y = x.exp()           # 4000 B, saved for backward (exp saves its result)
        z = y * y             # 4000 B, y saved twice (same storage)
        z.sum().backward()    # grads: dz (expand of a scalar), dy 4000 B, ... x.grad 4000 B

    peak = peak_memory_cpu(step).peak_bytes
    assert peak >= 3 * 4000    # at least y, z and one gradient buffer at the same time
    assert x.grad is not None


def test_time_budget_projects_from_the_last_large_item() -> None:
    clock = FakeClock()
    budget = TimeBudget(100.0, "bench.op_time_budget_s", min_units=500, clock=clock)
    assert budget.refusal(10 ** 9) is None          # nothing measured yet: the first item always runs
    clock.now += 5.0
    budget.record(units=10, seconds=5.0)             # small item: overhead-bound, sets no rate
    assert budget.refusal(10 ** 6) is None
    clock.now += 5.0
    budget.record(units=1000, seconds=5.0)           # 0.005 s per unit, 90 s left
    assert budget.refusal(18000) is None             # 90 s projected
    reason = budget.refusal(20000)                   # 100 s projected
    assert reason is not None and "bench.op_time_budget_s" in reason and "100 s" in reason
    clock.now += 100.0
    assert "already spent" in budget.refusal(1)
    assert TimeBudget(None, "k").refusal(10 ** 12) is None
    with pytest.raises(ValueError, match="k2"):
        TimeBudget(0, "k2")
