"""Figures for the report (matplotlib, Agg): training curves, metric bars, a qualitative grid, bench ratios.

Every figure is drawn for the report's page width (about 10 inches at 110 dpi): titles never overlap, every
mark is explained in the figure itself (error bars, colour bars, the evaluated checkpoint), text is ≥ 8 pt.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.core.io import atomic_path  # noqa: E402

DPI = 110
PAGE_WIDTH_IN = 10.0
#: One colour per variant, stable across figures (matplotlib's tab10 order).
COLOURS = plt.get_cmap("tab10").colors


def _save(fig: "plt.Figure", path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def read_dvclive_series(tsv: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one DVCLive metric file (columns [timestamp,] step, <name>) as (steps, values)."""
    steps, values = [], []
    with tsv.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            name = [k for k in row if k not in ("timestamp", "step")][0]
            steps.append(float(row["step"]))
            values.append(float(row[name]))
    return np.asarray(steps), np.asarray(values)


def training_curves(series: Mapping[str, Mapping[str, Mapping[Any, Path]]], path: Path,
                    marks: Mapping[str, Mapping[Any, int]] | None = None) -> Path | None:
    """One panel per metric name (three per row); one thin line per training seed, one colour per variant.

    `series[variant][metric][seed] = tsv path` (seed None: a run without a seed number). `marks[variant][seed]`
    is the iteration of the checkpoint that seed's test metrics come from: a thin dashed vertical line in the
    variant's colour, and a ring on that seed's validation curve.
    """
    metrics = sorted({m for per in series.values() for m in per}, key=lambda m: (m.startswith("val/"), m))
    if not metrics:
        return None
    marks = {v: dict(m) for v, m in (marks or {}).items()}
    variants = sorted(series)
    n_seeds = {v: len({s for per in series[v].values() for s in per}) for v in variants}
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH_IN, 2.9 * rows), squeeze=False, layout="constrained")
    for ax, metric in zip(axes.ravel(), metrics):
        for index, variant in enumerate(variants):
            colour = COLOURS[index % len(COLOURS)]
            for seed, tsv in sorted((series[variant].get(metric) or {}).items(), key=lambda kv: str(kv[0])):
                steps, values = read_dvclive_series(tsv)
                ax.plot(steps, values, marker="." if len(steps) < 30 else None, ms=4, color=colour, linewidth=0.9,
                        alpha=0.85)
                mark = marks.get(variant, {}).get(seed)
                if mark is None:
                    continue
                ax.axvline(mark, color=colour, linestyle="--", linewidth=0.7, alpha=0.6)
                if metric.startswith("val/") and mark in steps:
                    ax.plot([mark], [values[list(steps).index(mark)]], "o", mfc="none", mec=colour, ms=8)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("iteration", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        low, high = ax.get_xlim()
        if high - low < 2:  # a single logged iteration (e.g. one validation): centre it on integer ticks
            centre = round((low + high) / 2)
            ax.set_xlim(centre - 1, centre + 1)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    handles = [Line2D([], [], color=COLOURS[i % len(COLOURS)], linewidth=0.9,
                      label=f"{v} ({n_seeds[v]} seed{'s' if n_seeds[v] != 1 else ''})") for i, v in enumerate(variants)]
    if any(n > 1 for n in n_seeds.values()):
        handles.append(Line2D([], [], color="grey", linewidth=0.9, label="one thin line per training seed"))
    if any(marks.values()):
        handles.append(Line2D([], [], color="grey", linestyle="--", marker="o", mfc="none",
                              label="evaluated checkpoint (per seed)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize=9, frameon=False)
    return _save(fig, path)


def metric_bars(values: dict[str, dict[str, float]], path: Path, title: str,
                errors: dict[str, dict[str, float]] | None = None, error_label: str = "± 1 std",
                points: dict[str, dict[str, Sequence[float]]] | None = None) -> Path | None:
    """Bar chart per metric: `values[metric][label]`, optional error bars of the same shape (explained in a
    legend entry `error_label`) and optional individual values drawn as dots on each bar (`points`, e.g. one
    per training seed)."""
    if not values:
        return None
    metrics = list(values)
    fig, axes = plt.subplots(1, len(metrics), figsize=(PAGE_WIDTH_IN, 3.4), squeeze=False, layout="constrained")
    for ax, metric in zip(axes[0], metrics):
        names = list(values[metric])
        heights = [values[metric][n] for n in names]
        err = [errors[metric].get(n, 0.0) for n in names] if errors and metric in errors else None
        ax.bar(range(len(names)), heights, yerr=err, color=[COLOURS[i % len(COLOURS)] for i in range(len(names))],
               capsize=4, error_kw={"elinewidth": 1})
        for i, name in enumerate(names):
            dots = list((points or {}).get(metric, {}).get(name, []))
            if dots:
                offsets = np.linspace(-0.25, 0.25, len(dots)) if len(dots) > 1 else np.zeros(1)
                ax.plot(i + offsets, dots, "o", ms=3.5, mfc="white", mec="black", mew=0.8, zorder=3)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_title(metric, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    handles = [Line2D([], [], color="black", marker="_", markersize=10, linestyle="-", linewidth=1,
                      label=error_label)] if errors else []
    fig.suptitle(title, fontsize=11)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", fontsize=9, frameon=False)
    return _save(fig, path)


def qualitative_grid(rows: Sequence[dict[str, np.ndarray]], columns: Sequence[str], path: Path,
                     flags: Mapping[tuple[int, str], str] | None = None) -> Path | None:
    """Image grid: one row per test image, columns in order (RGB H×W×3 or gray H×W uint8, error maps float
    in [0, 1] with a shared colour bar). `flags[(row, column)]` is printed in red under that panel."""
    if not rows:
        return None
    flags = dict(flags or {})
    size = min(1.6, (PAGE_WIDTH_IN - 0.8) / len(columns))
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(size * len(columns) + 0.8, size * len(rows) + 0.4),
                             squeeze=False, layout="constrained")
    error_image = None
    for r, row in enumerate(rows):
        for c, name in enumerate(columns):
            ax = axes[r][c]
            img = row.get(name)
            if img is not None:
                if img.ndim == 2 and img.dtype != np.uint8:
                    error_image = ax.imshow(img, cmap="magma", vmin=0, vmax=1)
                else:
                    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
            if (r, name) in flags:
                ax.set_xlabel(flags[(r, name)], fontsize=7, color="#c00000")
                for spine in ax.spines.values():
                    spine.set_edgecolor("#c00000")
                    spine.set_linewidth(2)
    if error_image is not None:
        bar = fig.colorbar(error_image, ax=axes.ravel().tolist(), shrink=0.8, pad=0.01)
        bar.set_label("|prediction − ground truth| (alpha, 0–1)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return _save(fig, path)


def _shape_label(shape: Mapping[str, Any]) -> str:
    """'stage0 64², C 64' from a bench shape {where, size, channels, batch}."""
    where = str(shape.get("where", "")).split("/")[-1]
    return f"{where}\n{shape.get('size')}², C {shape.get('channels')}"


def bench_ratios(ops: Mapping[str, Any], operators: Mapping[str, Mapping[str, str]], path: Path) -> Path | None:
    """Forward-time ratio to the baseline per operator (rows) at the matting shapes of batch 1 (columns):
    upsampling (÷ bilinear interpolation) above, downsampling (÷ 2×2 average pooling) below.

    Row labels name what the pair really runs (e.g. 'bilinear · down: 2×2 max-pool'), so a max-pool row is not
    mistaken for the avg-pool baseline. Numbers are printed in each cell; colour is log-scaled, white = 1.
    """
    shapes = [item for item in ops.get("shapes", [])
              if "matting" in str(item["shape"].get("where", "")) and item["shape"].get("batch") == 1]
    names = list(ops.get("operators", []))
    if not shapes or not names:
        return None
    shapes.sort(key=lambda item: (item["shape"]["size"], item["shape"]["channels"]))
    panels = (("up_fwd", "Upsampling, forward: time ÷ F.interpolate(bilinear)", "up"),
              ("down_fwd", "Downsampling, forward: time ÷ F.avg_pool2d(2) (2×2 average pooling)", "down"))
    matrices = {mode: np.array([[item["results"].get(n, {}).get(mode, {}).get("ratio", np.nan) for item in shapes]
                                for n in names], dtype=float) for mode, _, _ in panels}
    finite = np.concatenate([m[np.isfinite(m) & (m > 0)] for m in matrices.values()])
    span = max(float(np.max(np.abs(np.log10(finite)))) if finite.size else 1.0, 0.3)
    norm = LogNorm(vmin=10 ** -span, vmax=10 ** span)
    height = 0.32 * len(names) + 1.1
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, 2 * height + 0.6), layout="constrained")
    image = None
    for ax, (mode, title, side) in zip(axes, panels):
        matrix = matrices[mode]
        image = ax.imshow(matrix, cmap="RdBu_r", norm=norm, aspect="auto")
        ax.set_xticks(range(len(shapes)), [_shape_label(item["shape"]) for item in shapes], fontsize=8)
        labels = [f"{n} · down: {operators.get(n, {}).get('down', '?')}" if operators and side == "down" else n
                  for n in names]
        ax.set_yticks(range(len(names)), labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        for (row, col), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(col, row, f"{value:.2g}" if value < 10 else f"{value:.0f}", ha="center", va="center",
                        fontsize=8, color="white" if abs(np.log10(max(value, 1e-9))) > 0.7 * span else "black")
    bar = fig.colorbar(image, ax=list(axes), shrink=0.7, pad=0.01)
    bar.set_label("time ÷ baseline (log scale; 1 = as fast)", fontsize=8)
    return _save(fig, path)


def toy_curves(curves: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]], path: Path,
               baseline: str = "bilinear") -> Path | None:
    """Learning curves of the toy study: one panel per dataset, mean validation PSNR over seeds per epoch,
    one line per operator (the baseline dashed). `curves[dataset][operator] = {'epoch': [...], 'psnr': [...]}`."""
    datasets = [d for d, per in curves.items() if per]
    if not datasets:
        return None
    fig, axes = plt.subplots(1, len(datasets), figsize=(PAGE_WIDTH_IN, 3.2), squeeze=False,
                             layout="constrained")
    operators = sorted({op for d in datasets for op in curves[d]})
    for ax, dataset in zip(axes.ravel(), datasets):
        for index, operator in enumerate(operators):
            if operator not in curves[dataset]:
                continue
            curve = curves[dataset][operator]
            ax.plot(curve["epoch"], curve["psnr"], marker="o", ms=3, color=COLOURS[index % len(COLOURS)],
                    linestyle="--" if operator == baseline else "-", label=operator)
        ax.set_title(f"{dataset}: validation PSNR (mean over seeds)", fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel("PSNR (dB)", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=COLOURS[i % len(COLOURS)], linestyle="--" if op == baseline else "-",
                      label=op) for i, op in enumerate(operators)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(8, len(handles)), fontsize=9, frameon=False)
    return _save(fig, path)
