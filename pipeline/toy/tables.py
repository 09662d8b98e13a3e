"""The toy track's `table.md` (mean ± std per dataset and operator) and `grid.png` (reconstructions).

Both say "protocol: ours (modelled on the authors' group harness)" and name the budget, so a CPU-profile table
cannot pass for the full protocol.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.core.io import atomic_path  # noqa: E402

#: (metrics.json key, column title, decimals)
COLUMNS = (("psnr", "PSNR (dB) ↑", 2), ("ssim", "SSIM ↑", 4), ("mae", "MAE ↓", 4), ("mse", "MSE ↓", 5))


def _cell(stat: dict[str, float], decimals: int, show_std: bool) -> str:
    text = f"{stat['mean']:.{decimals}f}"
    return text + (f" ± {stat['std']:.{decimals}f}" if show_std else "")


def budget_line(metrics: dict[str, Any]) -> str:
    """One sentence with the profile and budget behind the numbers."""
    subset = metrics.get("subset")
    train = "all training images" if subset is None else f"{subset} training images"
    val = metrics.get("val_subset")
    test = metrics.get("test_subset")
    return (f"Profile `{metrics.get('profile')}`: {metrics['epochs']} epochs on {train} "
            f"(validation: {'the held-out pool' if val is None else f'{val} held-out images'}; "
            f"test: {'the full test split' if test is None else f'the first {test} test images'}), "
            f"batch {metrics.get('batch_size')}, lr milestones {metrics.get('milestones')}, "
            f"seeds {metrics['seeds']} (mean ± sample std).")


def render_table(metrics: dict[str, Any]) -> str:
    """Markdown: one table per dataset, a row per operator, best-epoch and last-epoch test metrics."""
    show_std = len(metrics["seeds"]) > 1
    lines = [f"# Toy reconstruction (protocol: {metrics['protocol']})", "",
             budget_line(metrics),
             "Best = the epoch with the highest validation PSNR; last = the final epoch. "
             "Metrics per 32×32 test image (outputs clipped to [0, 1]), then averaged.", ""]
    header = ["operator", "params"] + [f"best {title}" for _, title, _ in COLUMNS] + ["best epoch"] + \
             [f"last {title}" for _, title, _ in COLUMNS]
    for dataset, by_operator in metrics["results"].items():
        lines += [f"## {dataset} (protocol: ours)", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for operator, row in by_operator.items():
            cells = [operator, f"{row['params']:,}"]
            cells += [_cell(row["best"][key], dec, show_std) for key, _, dec in COLUMNS]
            cells.append(_cell(row["best"]["epoch"], 1, show_std))
            cells += [_cell(row["last"][key], dec, show_std) for key, _, dec in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    for dataset, reason in (metrics.get("unavailable") or {}).items():
        first = reason.strip().splitlines()[0] if reason.strip() else "not found"
        lines += [f"## {dataset}: NOT RUN (dataset not available on this machine)", "",
                  f"{first} See results/toy/metrics.json `unavailable.{dataset}` for every place tried and the "
                  "fix command.", ""]
    return "\n".join(lines)


def save_grid(grids: dict[str, dict[str, np.ndarray]], path: str | Path, title: str) -> Path:
    """PNG with one panel per dataset: first row the inputs, then one row per operator (first seed, best)."""
    datasets = list(grids)
    if not datasets:
        raise ValueError("save_grid: no datasets to draw")
    rows = max(len(g) for g in grids.values())
    cols = max(g["input"].shape[0] for g in grids.values())
    fig, axes = plt.subplots(rows, cols * len(datasets), squeeze=False,
                             figsize=(0.9 * cols * len(datasets) + 1.2, 0.9 * rows + 0.8))
    for panel, dataset in enumerate(datasets):
        names = ["input"] + [k for k in grids[dataset] if k != "input"]
        for r, name in enumerate(names):
            for c in range(cols):
                ax = axes[r, panel * cols + c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c < grids[dataset][name].shape[0]:
                    ax.imshow(grids[dataset][name][c], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                if c == 0:
                    ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
                if r == 0 and c == 0:
                    ax.set_title(dataset, loc="left", fontsize=9)
    fig.suptitle(textwrap.fill(title, width=40 + 25 * len(datasets)), fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
