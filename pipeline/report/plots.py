"""Figures for the report (matplotlib, Agg): training curves from DVCLive, metric bars, a qualitative grid."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.core.io import atomic_path  # noqa: E402


def _save(fig: "plt.Figure", path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def read_dvclive_series(tsv: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one DVCLive metric file (columns timestamp, step, <name>) as (steps, values)."""
    steps, values = [], []
    with tsv.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            name = [k for k in row if k not in ("timestamp", "step")][0]
            steps.append(float(row["step"]))
            values.append(float(row[name]))
    return np.asarray(steps), np.asarray(values)


def training_curves(series: dict[str, dict[str, Path]], path: Path) -> Path | None:
    """One panel per metric name, one line per variant. `series[variant][metric] = tsv path`."""
    metrics = sorted({m for per in series.values() for m in per})
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for variant, per in sorted(series.items()):
            if metric in per:
                steps, values = read_dvclive_series(per[metric])
                ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=variant)
        ax.set_title(metric)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def metric_bars(values: dict[str, dict[str, float]], path: Path, title: str,
                errors: dict[str, dict[str, float]] | None = None) -> Path | None:
    """Bar chart per metric: `values[metric][operator]`, optional error bars of the same shape."""
    if not values:
        return None
    metrics = list(values)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        names = list(values[metric])
        heights = [values[metric][n] for n in names]
        err = [errors[metric].get(n, 0.0) for n in names] if errors and metric in errors else None
        ax.bar(range(len(names)), heights, yerr=err, color="#4c72b0", capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def qualitative_grid(rows: Sequence[dict[str, np.ndarray]], columns: Sequence[str], path: Path) -> Path | None:
    """Image grid: one row per test image, columns in order (RGB H×W×3 or gray H×W uint8, or error maps float)."""
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(1.9 * len(columns), 1.9 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, name in enumerate(columns):
            ax = axes[r][c]
            img = row.get(name)
            if img is not None:
                if img.ndim == 2 and img.dtype != np.uint8:
                    ax.imshow(img, cmap="magma", vmin=0, vmax=1)
                else:
                    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
    return _save(fig, path)
