"""Run the whole benchmark from the `bench` params and write results/bench/ (the stage's library).

What is measured and within which budgets is `pipeline.bench.params.BenchParams`; the device and seed come
from `base` (`BaseParams`).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from pipeline.bench.budget import TimeBudget
from pipeline.bench.networks import bench_networks
from pipeline.bench.ops import bench_shape, default_operators, default_pair_factory
from pipeline.bench.plot import plot_ratios
from pipeline.bench.reassembly import backend_label, bench_reassembly, reassembly_backend
from pipeline.bench.shapes import OpShape, plan_shapes
from pipeline.bench.steps import StepCase, bench_cases, build_step, case_median
from pipeline.bench.tables import render_markdown
from pipeline.bench.targets import evaluate_targets
from pipeline.bench.timing import thread_count
from pipeline.bench.export.forms import export_all
from pipeline.bench.floor import floor_summary, profile_labels, profile_step
from pipeline.bench.params import BenchParams
from pipeline.core.io import write_json, write_text
from pipeline.core.params import BaseParams
from pipeline.matting.metrics import benchmark_metrics

logger = logging.getLogger(__name__)

def matting_pair_factory():  # noqa: ANN201 - returns the factory type of pipeline.bench.ops
    """Pairs built with the matting network's default keyword arguments (so shapes/settings match §4.1)."""
    import models  # noqa: F401
    from models.ops.pairs import build_pair

    try:
        from models.matting.network import DEFAULT_PAIR_KWARGS
    except ImportError:
        return default_pair_factory()
    return lambda name, channels: build_pair(name, channels=channels, **DEFAULT_PAIR_KWARGS.get(name, {}))


#: Items smaller than this (N·C·R²) are overhead-bound and do not set the time projection (see budget.py).
RATE_MIN_ELEMENTS = 2 ** 20


def _priority(shape: OpShape) -> tuple[int, int]:
    """Matting shapes first (the targets are stated there), then the toy ones; smallest first within each."""
    return (0 if "matting" in shape.where else 1, shape.elements)


def run_operator_bench(cfg: BenchParams, seed: int, device: torch.device, factory=None, implementations=None
                       ) -> dict[str, Any]:
    """Every operator at every planned shape (by `_priority`, within `op_time_budget_s`), then the
    reassembly kernels at the matting shapes of batch 1 that ran (within `reassembly_time_budget_s`)."""
    operators = list(cfg.operators or default_operators())
    shapes, skipped = plan_shapes(list(cfg.op_matting_sizes), list(cfg.batch_sizes), cfg.op_max_elements,
                                  cfg.op_max_bytes, cfg.op_include_toy)
    factory = factory or matting_pair_factory()
    repeats = cfg.repeats
    results, done = [], []
    budget = TimeBudget(cfg.op_time_budget_s, "bench.op_time_budget_s", min_units=RATE_MIN_ELEMENTS)
    for shape in sorted(shapes, key=_priority):
        reason = budget.refusal(shape.elements)
        if reason:
            skipped.append({**shape.as_dict(), "reason": reason})
            continue
        start = time.perf_counter()
        results.append(bench_shape(shape, operators, factory, repeats, device, seed))
        budget.record(shape.elements, time.perf_counter() - start)
        done.append(shape)
        logger.info("operators at %s: %.1f s", shape, time.perf_counter() - start)
    reassembly, reassembly_skipped = [], []
    budget = TimeBudget(cfg.reassembly_time_budget_s, "bench.reassembly_time_budget_s",
                        min_units=RATE_MIN_ELEMENTS)
    for shape in [s for s in done if s.batch == 1 and "matting" in s.where]:
        reason = budget.refusal(shape.elements)
        if reason:
            reassembly_skipped.append({**shape.as_dict(), "reason": reason})
            continue
        start = time.perf_counter()
        reassembly.append(bench_reassembly(shape, repeats, device, seed, implementations))
        budget.record(shape.elements, time.perf_counter() - start)
    return {"operators": operators, "reassembly_backend": reassembly_backend(device), "shapes": results,
            "skipped": skipped, "reassembly": reassembly,
            "reassembly_skipped": reassembly_skipped, "repeats": repeats,
            "memory_method": results[0]["memory_method"] if results else None,
            "interleaving": "round-robin over operators (+ baselines) per repeat, start rotated each round"}


def step_cases(cfg: BenchParams) -> list[StepCase]:
    """The training-step cases of the targets: toy (batch N, 32²), then matting (batch, crop), small first."""
    toy = [StepCase("toy_train", batch, 32) for batch in cfg.toy_step_batches]
    matting = sorted((StepCase("matting_train", batch, crop) for batch, crop in cfg.matting_step_cases),
                     key=lambda c: c.batch * c.size ** 2)
    return toy + matting


def run_floor(cfg: BenchParams, steps: dict[str, Any], seed: int, device: torch.device,
              builder=None) -> dict[str, Any]:
    """Profile one A2U step per `floor_cases` at 1 thread; shares of the correlations and reassembly, top ops."""
    if not cfg.floor:
        return {"cases": [], "skipped": [{"case": "all", "reason": "bench.floor is false"}]}
    builder = builder or build_step
    cases, skipped = [], []
    for kind, batch, size in cfg.floor_cases:
        case = StepCase(kind, batch, size)
        with thread_count(1):
            profiled = profile_step(builder(case, "a2u", seed, device))
        entry = {**case.as_dict(), "threads": 1, "profile": profiled}
        a2u = case_median(steps, kind, batch, size, "a2u", 1)
        base = case_median(steps, kind, batch, size, "bilinear", 1)
        if a2u is not None and base is not None:
            entry["summary"] = floor_summary(profiled, a2u, base)
        else:
            entry["summary_note"] = "this case was not timed by the step bench (unprofiled times unknown)"
        cases.append(entry)
        logger.info("floor of %s: correlation %.0f%%, reassembly %.0f%% of a profiled step", case.label,
                    100 * profiled["labels"]["a2u::correlation"]["share"],
                    100 * sum(v["share"] for k, v in profiled["labels"].items() if "reassembly" in k))
    return {"cases": cases, "skipped": skipped, "labels": profile_labels()}


def run_benchmark(cfg: BenchParams, base: BaseParams, out_dir: str | Path, network_factory=None,
                  pair_factory=None, implementations=None, step_builder=None) -> dict[str, Any]:
    """Run operators, training steps, networks, floor and metrics; write ops.json, steps.json, networks.json,
    floor.json, targets.json, table.md and ratios.png."""
    device = torch.device(base.torch_device())
    seed = base.seed
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    load_before = os.getloadavg()
    ops = run_operator_bench(cfg, seed, device, pair_factory, implementations)
    ops["device"] = str(device)
    ops["load_average_1min_before_after"] = [load_before[0], os.getloadavg()[0]]
    write_json(out_dir / "ops.json", ops)
    matting = ["bilinear", *(v for v in cfg.step_variants if v != "bilinear")]   # the baseline first
    steps = bench_cases(step_cases(cfg), {"toy_train": ["bilinear", "a2u"], "matting_train": matting},
                        list(cfg.ratio_threads), cfg.step_repeats, seed, device, cfg.step_time_budget_s, step_builder)
    write_json(out_dir / "steps.json", steps)
    if cfg.network_variants and cfg.network_sizes:
        nets = bench_networks(list(cfg.network_variants), list(cfg.network_sizes), cfg.network_repeats, device,
                              seed, cfg.network_time_budget_s, network_factory, list(cfg.ratio_threads))
    else:
        nets = {"sizes": [], "variants": [], "parameters": {},
                "skipped": [{"size": "all", "reason": "bench.network_variants or network_sizes is empty"}]}
    nets["device"] = str(device)
    write_json(out_dir / "networks.json", nets)
    floor = run_floor(cfg, steps, seed, device, step_builder)
    write_json(out_dir / "floor.json", floor)
    metrics = benchmark_metrics(size=cfg.metrics_size, repeats=cfg.metrics_repeats, seed=seed)
    if cfg.export:
        exports = export_all(out_dir / "export", cfg.export_sizes, seed=seed)
        write_json(out_dir / "export" / "export.json", exports)
        nets["onnx_export"] = {name: {"max_abs_diff": f["max_abs_diff"], "max_scaled_diff": f["max_scaled_diff"],
                                      "export_s": f["export_s"]}
                               for name, f in exports["forms"].items()}
    targets = evaluate_targets(ops, nets, metrics, steps=steps)
    load_after = os.getloadavg()
    what = "CUDA events" if device.type == "cuda" else "CPU wall clock (time.perf_counter)"
    header = (f"Device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
              f"torch {torch.__version__}, profile `{base.profile}`; timed with {what}. Operator tables: "
              f"{torch.get_num_threads()} thread(s), median of {cfg.repeats} interleaved repeats; training steps: "
              f"median of {cfg.step_repeats}, network forward: median of {cfg.network_repeats} interleaved "
              f"repeats, at {', '.join(map(str, cfg.ratio_threads))} thread(s). A2U/A2D reassembly backend: "
              f"{backend_label(ops['reassembly_backend'])}. 1-min load average "
              f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end (a load above the core count "
              f"means other processes shared the cores).")
    write_json(out_dir / "targets.json", {**targets, "reassembly_backend": ops["reassembly_backend"],
                                          "metrics_seconds": metrics,
                                          "load_average_1min_start_end": [load_before[0], load_after[0]]})
    write_text(out_dir / "table.md", render_markdown(ops, nets, metrics, targets, header, steps, floor))
    if ops["shapes"]:
        plot_ratios(ops, out_dir / "ratios.png")
    return {"ops": ops, "networks": nets, "metrics": metrics, "targets": targets, "steps": steps, "floor": floor}
