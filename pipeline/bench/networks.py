"""Whole matting network per upsampler variant: forward latency and peak memory (eval mode, no_grad).

For each input size S, every variant's forward on a 1×4×S×S input is measured in the same round-robin
(interleaved, median over repeats), once per thread count of `threads` (`torch.set_num_threads`, restored
afterwards). One untimed forward per variant, under the memory tracker of `pipeline.bench.memory`, gives the
peak and doubles as the warm-up. Sizes whose projected cost would overrun the profile's time budget are
skipped, and the reason is recorded (never measured with fewer repeats than asked: the forward targets
need ≥ 3).

Per size and variant, `median_s`/`time_ratio_vs_bilinear` are those of the first thread count (the layout
the report reads); `threads` holds every thread count's samples, median and ratio.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from pipeline.bench.budget import TimeBudget
from pipeline.bench.memory import peak_memory
from pipeline.bench.timing import interleaved_medians, thread_count, timer_for

logger = logging.getLogger(__name__)
NetworkFactory = Callable[[str], nn.Module]
#: Sizes below 256² (×rounds) are overhead-bound and do not set the time projection.
NETWORK_RATE_MIN_UNITS = 256 * 256


def default_network_factory() -> NetworkFactory:
    """`A2UMattingNet(upsampler=variant)` from models/matting (registered in MMEngine's root MODELS)."""
    from models.matting.network import A2UMattingNet

    return lambda variant: A2UMattingNet(upsampler=variant)


def _forward_case(net: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    def forward() -> Any:
        with torch.no_grad():
            return net(x)
    return forward


def bench_size(nets: dict[str, nn.Module], size: int, repeats: int, device: torch.device | str,
               seed: int = 0, threads: Sequence[int | None] = (None,)) -> dict[str, Any]:
    """Measure every network at one square input size; ratios are against 'bilinear' when present."""
    torch.manual_seed(seed)
    x = torch.randn(1, 4, size, size, device=device)
    cases = {name: _forward_case(net, x) for name, net in nets.items()}
    memory = {name: peak_memory(fn, device) for name, fn in cases.items()}
    base = "bilinear" if "bilinear" in nets else None
    per_thread: dict[str, dict[str, Any]] = {}
    for count in threads:
        with thread_count(count):
            timings = interleaved_medians(cases, repeats, timer=timer_for(device), warmup=0)
        per_thread[str(count or torch.get_num_threads())] = {
            name: {**t.as_dict(), **({"time_ratio_vs_bilinear": t.median_s / timings[base].median_s} if base else {})}
            for name, t in timings.items()}
    first = next(iter(per_thread.values()))
    out: dict[str, Any] = {"size": size, "repeats": repeats, "memory_method": next(iter(memory.values())).method,
                           "variants": {}}
    for name in nets:
        entry = {**first[name], "peak_bytes": memory[name].peak_bytes,
                 "threads": {count: results[name] for count, results in per_thread.items()}}
        if base is not None:
            entry["memory_ratio_vs_bilinear"] = memory[name].peak_bytes / max(memory[base].peak_bytes, 1)
        out["variants"][name] = entry
    return out


def bench_networks(variants: list[str], sizes: list[int], repeats: int, device: torch.device | str = "cpu",
                   seed: int = 0, time_budget_s: float | None = None,
                   factory: NetworkFactory | None = None, threads: Sequence[int | None] = (None,)) -> dict[str, Any]:
    """Measure every variant at every size (ascending). Returns {"sizes": [...], "skipped": [...]}.

    `time_budget_s` bounds this function's wall time (`pipeline.bench.budget`): the cost of a size is projected
    from the previous one (time ∝ pixels) for 1 + repeats × len(threads) forwards per variant; a size that does
    not fit is skipped with the reason.
    """
    factory = factory or default_network_factory()
    nets: dict[str, nn.Module] = {}
    for name in variants:
        torch.manual_seed(seed)
        nets[name] = factory(name).to(device).eval()
    budget = TimeBudget(time_budget_s, "bench.network_time_budget_s", min_units=NETWORK_RATE_MIN_UNITS)
    results, skipped = [], []
    rounds = 1 + repeats * len(threads)
    for size in sorted(sizes):
        # one unit = one forward of every variant at 1 pixel; a size costs `rounds` rounds
        reason = budget.refusal(size * size * rounds)
        if reason:
            skipped.append({"size": size, "reason": reason})
            continue
        start = time.perf_counter()
        result = bench_size(nets, size, repeats, device, seed, threads)
        budget.record(size * size * rounds, time.perf_counter() - start)
        results.append(result)
        logger.info("networks at %d²: %.1f s (%d repeats × threads %s)", size, time.perf_counter() - start, repeats,
                    list(threads))
    return {"sizes": results, "skipped": skipped, "variants": list(nets), "threads": [str(t) for t in threads],
            "parameters": {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}}
