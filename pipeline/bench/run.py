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
from pipeline.bench.ops import bench_shape, default_pair_factory, registered_operators
from pipeline.bench.plot import plot_ratios
from pipeline.bench.reassembly import bench_reassembly
from pipeline.bench.shapes import OpShape, plan_shapes
from pipeline.bench.tables import render_markdown
from pipeline.bench.targets import evaluate_targets
from pipeline.bench.export.forms import export_all
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
    operators = list(cfg.operators or registered_operators())
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
    return {"operators": operators, "shapes": results, "skipped": skipped, "reassembly": reassembly,
            "reassembly_skipped": reassembly_skipped, "repeats": repeats,
            "memory_method": results[0]["memory_method"] if results else None,
            "interleaving": "round-robin over operators (+ baselines) per repeat, start rotated each round"}


def run_benchmark(cfg: BenchParams, base: BaseParams, out_dir: str | Path, network_factory=None,
                  pair_factory=None, implementations=None) -> dict[str, Any]:
    """Run operators, networks and metrics; write ops.json, networks.json, table.md and ratios.png."""
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
    if cfg.network_variants and cfg.network_sizes:
        nets = bench_networks(list(cfg.network_variants), list(cfg.network_sizes), cfg.repeats, device, seed,
                              cfg.network_time_budget_s, network_factory)
    else:
        nets = {"sizes": [], "variants": [], "parameters": {},
                "skipped": [{"size": "all", "reason": "bench.network_variants or network_sizes is empty"}]}
    nets["device"] = str(device)
    write_json(out_dir / "networks.json", nets)
    metrics = benchmark_metrics(size=cfg.metrics_size, repeats=cfg.metrics_repeats, seed=seed)
    if cfg.export:
        exports = export_all(out_dir / "export", cfg.export_sizes, seed=seed)
        write_json(out_dir / "export" / "export.json", exports)
        nets["onnx_export"] = {name: {"max_abs_diff": f["max_abs_diff"], "max_scaled_diff": f["max_scaled_diff"],
                                      "export_s": f["export_s"]}
                               for name, f in exports["forms"].items()}
    targets = evaluate_targets(ops, nets, metrics)
    header = (f"Device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, profile `{base.profile}`, "
              f"median of {cfg.repeats} interleaved repeats; 1-min load average {load_before[0]:.1f} at the "
              f"start (a load above the core count means other processes shared the cores).")
    write_json(out_dir / "targets.json", {**targets, "metrics_seconds": metrics})
    write_text(out_dir / "table.md", render_markdown(ops, nets, metrics, targets, header))
    if ops["shapes"]:
        plot_ratios(ops, out_dir / "ratios.png")
    return {"ops": ops, "networks": nets, "metrics": metrics, "targets": targets}
