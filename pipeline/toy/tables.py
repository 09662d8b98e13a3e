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


def paired_cell(row: dict[str, Any]) -> str:
    """'−1.23 [−2.01, −0.45] *' (paired Δ PSNR vs the baseline and its interval; * = significant), or '—'."""
    paired = row.get("paired")
    if not paired:
        return "— (baseline)" if "per_seed" in row else "—"
    if paired["interval"] is None:
        return f"{paired['mean']:+.2f} (1 seed)"
    low, high = paired["interval"]
    return f"{paired['mean']:+.2f} [{low:+.2f}, {high:+.2f}]" + (" *" if paired["significant"] else "")


def significance_sentences(summary: dict[str, Any], dataset: str) -> list[str]:
    """Which operators differ significantly from the baseline on `dataset`, in words (pipeline.toy.stats)."""
    from pipeline.toy.stats import describe_difference

    rows = (summary.get("results") or {}).get(dataset, {})
    return [describe_difference(op, row["paired"]["baseline"], row["paired"]) for op, row in rows.items()
            if row.get("paired")]


def render_table(metrics: dict[str, Any]) -> str:
    """Markdown: one table per dataset, a row per operator: best-checkpoint test metrics (mean ± std over
    seeds), the paired PSNR difference to the baseline with its interval, the plateau epoch of the mean
    validation curve, and the last epoch's PSNR; then the differences in words."""
    show_std = len(metrics["seeds"]) > 1
    confidence = round(100 * metrics.get("confidence", 0.95))
    baseline = metrics.get("baseline", "bilinear")
    lines = [f"# Toy reconstruction (protocol: {metrics['protocol']})", "",
             budget_line(metrics),
             "Best = the checkpoint with the highest validation PSNR (its epoch shown); last = the final epoch. "
             "Metrics per 32×32 test image (outputs clipped to [0, 1]), then averaged. "
             f"Δ PSNR: best test PSNR minus {baseline}'s, paired by seed, with its {confidence}% Student-t "
             "interval over seeds (* = the interval excludes 0). Plateau: the first epoch after which the mean "
             "validation PSNR never rises by more than 0.1 dB (— if it still does at the last epoch).", ""]
    header = ["operator", "params"] + [f"best {title}" for _, title, _ in COLUMNS] + \
             ["best epoch", f"Δ PSNR vs {baseline} [{confidence}% CI]", "plateau epoch", "last PSNR (dB)"]
    for dataset, by_operator in metrics["results"].items():
        lines += [f"## {dataset} (protocol: ours)", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        for operator, row in by_operator.items():
            cells = [operator, f"{row['params']:,}"]
            cells += [_cell(row["best"][key], dec, show_std) for key, _, dec in COLUMNS]
            cells.append(_cell(row["best"]["epoch"], 1, show_std))
            cells.append(paired_cell(row))
            plateau = row.get("plateau_epoch")
            cells.append("—" if plateau is None else str(plateau))
            cells.append(_cell(row["last"]["psnr"], 2, show_std))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", *[f"- {sentence}" for sentence in significance_sentences(metrics, dataset)], ""]
    for dataset, reason in (metrics.get("unavailable") or {}).items():
        first = reason.strip().splitlines()[0] if reason.strip() else "not found"
        lines += [f"## {dataset}: NOT RUN (dataset not available on this machine)", "",
                  f"{first} See results/toy/summary.json `unavailable.{dataset}` for every place tried and the "
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
