"""Markdown tables of the benchmark: time ratios per operator and shape, reassembly, networks, metrics."""
from __future__ import annotations

from typing import Any

from pipeline.bench.ops import DOWN_BASELINE, MODES, UP_BASELINE
from pipeline.bench.reassembly import backend_label

MODE_TITLES = {"up_fwd": "upsampling, forward (ratio to F.interpolate bilinear)",
               "up_fwdbwd": "upsampling, forward+backward (ratio to F.interpolate bilinear)",
               "down_fwd": "downsampling, forward (ratio to 2×2 avg-pool; A2U includes kernel generation)",
               "down_fwdbwd": "downsampling, forward+backward (ratio to 2×2 avg-pool)"}


def shape_label(shape: dict[str, Any]) -> str:
    """Short column label such as 'N1 C64 512²'."""
    return f"N{shape['batch']} C{shape['channels']} {shape['size']}²"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def operator_ratio_tables(ops: dict[str, Any]) -> str:
    """One table per mode: rows = operators, columns = shapes, cells = median ratio (baseline row in ms)."""
    shapes = ops["shapes"]
    if not shapes:
        return "_no operator shapes were run_\n"
    header = ["operator"] + [shape_label(item["shape"]) for item in shapes]
    parts = []
    for mode in MODES:
        base = UP_BASELINE if mode.startswith("up") else DOWN_BASELINE
        rows = [[f"{base} (ms)"] + [f"{item['results'][base][mode]['median_s'] * 1e3:.2f}" for item in shapes]]
        for name in ops["operators"]:
            rows.append([name] + [f"{item['results'][name][mode]['ratio']:.2f}×" for item in shapes])
        parts.append(f"#### {MODE_TITLES[mode]}\n\n" + _md_table(header, rows))
    return "\n\n".join(parts) + "\n"


def peak_memory_table(ops: dict[str, Any], mode: str = "up_fwdbwd") -> str:
    """Peak MiB per operator and shape for one mode."""
    shapes = ops["shapes"]
    base = UP_BASELINE if mode.startswith("up") else DOWN_BASELINE
    header = ["operator"] + [shape_label(item["shape"]) for item in shapes]
    rows = [[name] + [f"{item['results'][name][mode]['peak_bytes'] / 2**20:.1f}" for item in shapes]
            for name in [base, *ops["operators"]]]
    return f"#### peak MiB, {mode}\n\n" + _md_table(header, rows) + "\n"


def reassembly_table(items: list[dict[str, Any]]) -> str:
    """Fast vs unfold reassembly: median ms, speed-up vs unfold, extra memory over the output."""
    rows = []
    for item in items:
        for direction in ("up", "down"):
            for name, entry in item[direction].items():
                rows.append([shape_label(item["shape"]), name, f"{entry['median_s'] * 1e3:.2f}",
                             f"{entry['speedup_vs_unfold']:.1f}×", f"{entry['extra_over_output']:.2f}×",
                             f"{entry.get('max_abs_diff_vs_unfold', float('nan')):.1e}"])
    return _md_table(["shape", "implementation", "median ms", "speed-up vs unfold", "extra mem / output",
                      "max |Δ| vs unfold"], rows) + "\n"


def fused_vs_eager_table(items: list[dict[str, Any]]) -> str:
    """Fused C++ op against the pure-PyTorch kernels, same run: median ms of each and the speed-up."""
    titles = {"up": "A2U up (a2u_upsample)", "down": "A2D down (a2d_downsample)"}
    modes = {"fwd": "forward", "fwdbwd": "forward+backward"}
    rows = []
    for item in items:
        for direction, per in item.get("fused_vs_eager", {}).items():
            for mode, entry in per.items():
                rows.append([shape_label(item["shape"]), titles.get(direction, direction), modes.get(mode, mode),
                             f"{entry['fused_median_s'] * 1e3:.2f}", f"{entry['eager_median_s'] * 1e3:.2f}",
                             f"{entry['speedup']:.1f}×"])
    if not rows:
        return "_the pure-PyTorch kernels were not timed beside a fused op (no fused backend in this run)_\n"
    return _md_table(["shape", "op", "mode", "fused ms", "pure PyTorch ms", "speed-up"], rows) + "\n"


def network_table(nets: dict[str, Any]) -> str:
    """Per size and variant: median forward seconds, ratio to bilinear, peak MiB and its ratio."""
    rows = []
    for item in nets["sizes"]:
        for name, entry in item["variants"].items():
            rows.append([f"{item['size']}²", name, str(item["repeats"]), f"{entry['median_s']:.3f}",
                         f"{entry.get('time_ratio_vs_bilinear', float('nan')):.2f}×",
                         f"{entry['peak_bytes'] / 2**20:.0f}", f"{entry.get('memory_ratio_vs_bilinear', float('nan')):.2f}×"])
    return _md_table(["input", "variant", "repeats", "forward s (median)", "time / bilinear", "peak MiB",
                      "memory / bilinear"], rows) + "\n"


def skipped_list(skipped: list[dict[str, Any]]) -> str:
    if not skipped:
        return "_none_\n"
    return "\n".join(f"- {', '.join(f'{k}={v}' for k, v in s.items() if k != 'reason')}: {s['reason']}"
                     for s in skipped) + "\n"


def steps_table(steps: dict[str, Any]) -> str:
    """Per training-step case and thread count: median ms of each variant and the ratio to the baseline."""
    rows = []
    for item in steps.get("cases", []):
        for threads, per in item["threads"].items():
            base = per[item["baseline"]]["median_s"]
            for name, entry in per.items():
                rows.append([item["label"], threads, name, str(item["repeats"]), f"{entry['median_s'] * 1e3:.1f}",
                             f"{entry['median_s'] / base:.2f}×"])
    if not rows:
        return "_no training-step case was run_\n"
    return _md_table(["case", "threads", "variant", "repeats", "step ms (median)", "time / bilinear"], rows) + "\n"


def forward_threads_table(nets: dict[str, Any]) -> str:
    """Network forward ratio to bilinear per size, variant and thread count."""
    rows = []
    for item in nets.get("sizes", []):
        for name, entry in item["variants"].items():
            for threads, per in entry.get("threads", {}).items():
                rows.append([f"{item['size']}²", name, threads, str(item["repeats"]), f"{per['median_s']:.3f}",
                             f"{per.get('time_ratio_vs_bilinear', float('nan')):.3f}×"])
    if not rows:
        return "_no network size was run_\n"
    return _md_table(["input", "variant", "threads", "repeats", "forward s (median)", "time / bilinear"], rows) + "\n"


def floor_section(floor: dict[str, Any]) -> str:
    """Shares of the correlations and reassembly in a profiled A2U step, the floor ratio, the top ops."""
    if not floor.get("cases"):
        return skipped_list(floor.get("skipped", []))
    parts = []
    for item in floor["cases"]:
        prof = item["profile"]
        rows = [[label, f"{v['s'] * 1e3:.1f}", f"{100 * v['share']:.1f}%"] for label, v in prof["labels"].items()]
        rows.append(["everything else", f"{prof['other_share'] * prof['step_s'] * 1e3:.1f}",
                     f"{100 * prof['other_share']:.1f}%"])
        text = (f"### {item['label']} (A2U, {item['threads']} thread, profiled step {prof['step_s'] * 1e3:.1f} ms)\n\n"
                + _md_table(["range", "ms per step (profiled)", "share"], rows) + "\n")
        summary = item.get("summary")
        if summary:
            text += (f"\nUnprofiled medians (step bench, 1 thread): A2U {summary['step_s'] * 1e3:.1f} ms, bilinear "
                     f"{summary['baseline_step_s'] * 1e3:.1f} ms, ratio {summary['ratio']:.2f}×; if everything but "
                     f"the correlations and reassembly cost what bilinear's step does, the ratio would be "
                     f"{summary['floor_ratio']:.2f}× (the floor of today's primitives).\n")
        else:
            text += f"\n{item.get('summary_note', '')}\n"
        text += "\nTop ATen ops by self CPU time (profiled, per step):\n\n" + _md_table(
            ["op", "self ms", "calls"], [[o["name"], f"{o['self_s'] * 1e3:.2f}", str(o["calls"])]
                                         for o in prof["top_ops"]]) + "\n"
        parts.append(text)
    return "\n".join(parts)


def render_markdown(ops: dict[str, Any], nets: dict[str, Any] | None, metrics: dict[str, Any] | None,
                    targets: dict[str, Any], header: str, steps: dict[str, Any] | None = None,
                    floor: dict[str, Any] | None = None) -> str:
    """The whole table.md: header (device, threads), targets, operator tables, reassembly, networks, metrics."""
    parts = [f"# Benchmark\n\n{header}\n", "## Targets\n", _md_table(
        ["target", "measured", "limit", "met"],
        [[t["name"], f"{t['value']:.2f}" if t["value"] is not None else "n/a", str(t["limit"]),
          {True: "yes", False: "**no**", None: "n/a"}[t["met"]]] for t in targets["checks"]]) + "\n"]
    if steps is not None:
        parts += ["## Training steps: A2U / bilinear (zero_grad, forward, loss, backward, optimiser step)\n",
                  steps_table(steps), "### Skipped training-step cases\n", skipped_list(steps.get("skipped", []))]
    if floor is not None:
        parts += ["## Floor: where an A2U training step spends its time (torch.profiler, CPU)\n",
                  floor_section(floor)]
    backend = backend_label(ops.get("reassembly_backend"))
    parts += ["## Operator pairs: time ratios\n", f"Peak memory method: {ops.get('memory_method', 'n/a')}. "
              f"A2U/A2D reassembly in these tables: {backend}.\n", operator_ratio_tables(ops)]
    if ops["shapes"]:
        parts += [peak_memory_table(ops, "up_fwdbwd"), peak_memory_table(ops, "down_fwdbwd")]
    parts += ["### Skipped operator shapes\n", skipped_list(ops["skipped"])]
    if ops.get("reassembly"):
        parts += ["## Reassembly alone: fast vs unfold\n", f"Backend of a2u_upsample / a2d_downsample: {backend}; "
                  "`*_eager`: the pure-PyTorch kernels (fused_cpu.fallback()), timed in the same round.\n",
                  reassembly_table(ops["reassembly"])]
        if any("fused_vs_eager" in item for item in ops["reassembly"]):
            parts += ["### Fused C++ op vs pure PyTorch (same run, interleaved; forward+backward: both "
                      "gradients)\n", fused_vs_eager_table(ops["reassembly"])]
    if ops.get("reassembly_skipped"):
        parts += ["### Skipped reassembly shapes\n", skipped_list(ops["reassembly_skipped"])]
    if nets is not None:
        parts += ["## Whole matting network (eval, no_grad, batch 1)\n", network_table(nets),
                  "### Forward time ratio by thread count\n", forward_threads_table(nets),
                  "### Skipped network sizes\n", skipped_list(nets["skipped"])]
        if nets.get("onnx_export"):
            parts += ["## ONNX export (opset 17, dynamic H, W): onnxruntime vs PyTorch\n", _md_table(
                ["form", "max |Δ|", "max |Δ| / max(1, max |output|)", "export s"],
                [[name, f"{e['max_abs_diff']:.1e}", f"{e['max_scaled_diff']:.1e}", f"{e['export_s']:.1f}"]
                 for name, e in nets["onnx_export"].items()])
                + "\n"]
    if metrics is not None:
        parts += ["## Matting metrics speed (s per image)\n",
                  _md_table(list(metrics), [[f"{v:.3f}" if isinstance(v, float) else str(v)
                                             for v in metrics.values()]]) + "\n"]
    return "\n".join(parts)
