"""Run the whole benchmark from the resolved `bench` params and write results/bench/ (the stage's library).

Keys read from the resolved `bench` section (defaults in DEFAULTS; `batch_sizes`, `repeats`,
`network_sizes` come from the profile's budget):
    operators           pair names (null = every registered pair)
    network_variants    A2UMattingNet upsamplers measured as whole networks
    op_matting_sizes    matting input sizes whose ×2-stage shapes the operators are timed at
    op_include_toy      also time the toy network's shapes
    op_max_elements     largest N·C·R² operator case run (time budget); bigger ones are listed as skipped
    op_max_bytes        skip cases whose estimated peak exceeds this (≈4 GiB)
    op_time_budget_s, reassembly_time_budget_s   wall-time bounds (see pipeline.bench.budget)
    network_time_budget_s   wall-time bound of the network part (see bench_networks)
    metrics_size, metrics_repeats   the matting-metrics speed case
    threads             torch intra-op threads (null = torch's default); 1 gives steadier CPU ratios on a
                        machine shared with other jobs (oversubscribed threads wait on each other)
    export, export_sizes   write ONNX exports (A2U self-guided, A2U pair, a2u network) to export/ and check
                        onnxruntime against PyTorch at these (H, W)
"""
from __future__ import annotations

import importlib
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
from pipeline.export.forms import export_all
from pipeline.io import write_json, write_text

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "operators": None, "network_variants": ["bilinear", "a2u", "a2u-unshared"], "op_matting_sizes": [512, 1024],
    "op_include_toy": True, "op_max_elements": 2 ** 22, "op_max_bytes": 4 * 2 ** 30,
    "op_time_budget_s": 120.0, "reassembly_time_budget_s": 40.0, "network_time_budget_s": 120.0, "metrics_size": 800, "metrics_repeats": 3,
    "repeats": 5, "batch_sizes": [1], "network_sizes": [512],
    "export": True, "export_sizes": [[64, 96], [256, 256]], "threads": None,
}


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU raises ValueError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"params.yaml: base.device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("params.yaml: base.device is 'cuda' but torch.cuda.is_available() is False")
    return torch.device(name)


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


def _seconds(value: Any) -> float | None:
    """A time-budget param: null = unlimited (e.g. the paper profile on a GPU)."""
    return None if value is None else float(value)


def _priority(shape: OpShape) -> tuple[int, int]:
    """Matting shapes first (the targets are stated there), then the toy ones; smallest first within each."""
    return (0 if "matting" in shape.where else 1, shape.elements)


def run_operator_bench(cfg: dict[str, Any], device: torch.device, factory=None, implementations=None
                       ) -> dict[str, Any]:
    """Every operator at every planned shape (by `_priority`, within `op_time_budget_s`), then the
    reassembly kernels at the matting shapes of batch 1 that ran (within `reassembly_time_budget_s`)."""
    operators = list(cfg["operators"] or registered_operators())
    shapes, skipped = plan_shapes(cfg["op_matting_sizes"], cfg["batch_sizes"], int(cfg["op_max_elements"]),
                                  int(cfg["op_max_bytes"]), bool(cfg["op_include_toy"]))
    factory = factory or matting_pair_factory()
    repeats, seed = int(cfg["repeats"]), int(cfg["seed"])
    results, done = [], []
    budget = TimeBudget(_seconds(cfg["op_time_budget_s"]), "bench.op_time_budget_s", min_units=RATE_MIN_ELEMENTS)
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
    budget = TimeBudget(_seconds(cfg["reassembly_time_budget_s"]), "bench.reassembly_time_budget_s",
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


def run_metrics_bench(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """`pipeline.metrics.matting.benchmark_metrics` when that module exists, else None (logged)."""
    try:
        module = importlib.import_module("pipeline.metrics.matting")
    except ModuleNotFoundError:
        logger.warning("pipeline.metrics.matting is absent: metrics speed not measured")
        return None
    return module.benchmark_metrics(size=int(cfg["metrics_size"]), repeats=int(cfg["metrics_repeats"]),
                                    seed=int(cfg["seed"]))


def run_benchmark(cfg: dict[str, Any], out_dir: str | Path, network_factory=None, pair_factory=None,
                  implementations=None) -> dict[str, Any]:
    """Run operators, networks and metrics; write ops.json, networks.json, table.md and ratios.png."""
    cfg = {**DEFAULTS, **cfg}
    device = resolve_device(str(cfg.get("device", "auto")))
    if cfg["threads"] is not None:
        if int(cfg["threads"]) < 1:
            raise ValueError(f"params.yaml: bench.threads must be >= 1 or null, got {cfg['threads']!r}")
        torch.set_num_threads(int(cfg["threads"]))
    torch.manual_seed(int(cfg["seed"]))
    out_dir = Path(out_dir)
    load_before = os.getloadavg()
    ops = run_operator_bench(cfg, device, pair_factory, implementations)
    ops["device"] = str(device)
    ops["load_average_1min_before_after"] = [load_before[0], os.getloadavg()[0]]
    write_json(out_dir / "ops.json", ops)
    if cfg["network_variants"] and cfg["network_sizes"]:
        nets = bench_networks(list(cfg["network_variants"]), list(cfg["network_sizes"]), int(cfg["repeats"]),
                              device, int(cfg["seed"]), _seconds(cfg["network_time_budget_s"]), network_factory)
    else:
        nets = {"sizes": [], "variants": [], "parameters": {},
                "skipped": [{"size": "all", "reason": "bench.network_variants or network_sizes is empty"}]}
    nets["device"] = str(device)
    write_json(out_dir / "networks.json", nets)
    metrics = run_metrics_bench(cfg)
    if cfg["export"]:
        sizes = tuple(tuple(int(v) for v in hw) for hw in cfg["export_sizes"])
        exports = export_all(out_dir / "export", sizes, seed=int(cfg["seed"]))
        write_json(out_dir / "export" / "export.json", exports)
        nets["onnx_export"] = {name: {"max_abs_diff": f["max_abs_diff"], "max_scaled_diff": f["max_scaled_diff"],
                                      "export_s": f["export_s"]}
                               for name, f in exports["forms"].items()}
    targets = evaluate_targets(ops, nets, metrics)
    header = (f"Device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, profile `{cfg.get('profile')}`, "
              f"median of {cfg['repeats']} interleaved repeats; 1-min load average {load_before[0]:.1f} at the "
              f"start (a load above the core count means other processes shared the cores).")
    write_json(out_dir / "targets.json", {**targets, "metrics_seconds": metrics})
    write_text(out_dir / "table.md", render_markdown(ops, nets, metrics, targets, header))
    if ops["shapes"]:
        plot_ratios(ops, out_dir / "ratios.png")
    return {"ops": ops, "networks": nets, "metrics": metrics, "targets": targets}
