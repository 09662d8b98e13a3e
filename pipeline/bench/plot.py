"""ratios.png: time ratio to the baseline per operator (rows) and shape (columns), one heat map per mode.

Each cell is annotated with its ratio (e.g. "2.4") so the figure reads without a colour bar; the colour is
log-scaled and centred on 1 (white = as fast as the baseline, red = slower, blue = faster).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from pipeline.bench.ops import MODES  # noqa: E402
from pipeline.bench.tables import MODE_TITLES, shape_label  # noqa: E402
from pipeline.core.io import atomic_path  # noqa: E402


def ratio_matrix(ops: dict[str, Any], mode: str) -> np.ndarray:
    """operators × shapes array of median ratios for `mode`."""
    return np.array([[item["results"][name][mode]["ratio"] for item in ops["shapes"]] for name in ops["operators"]],
                    dtype=float)


def _label(value: float) -> str:
    """Two significant digits, so 0.04 does not print as 0.0 and 250 not as 250.0."""
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def plot_ratios(ops: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Write the 2×2 heat-map figure of `ops` (the ops.json content) atomically to `path` (PNG)."""
    if not ops["shapes"] or not ops["operators"]:
        raise ValueError("ops results hold no shapes or no operators: nothing to plot")
    columns = [shape_label(item["shape"]) for item in ops["shapes"]]
    matrices = {mode: ratio_matrix(ops, mode) for mode in MODES}
    finite = np.concatenate([m[np.isfinite(m) & (m > 0)] for m in matrices.values()])
    span = max(float(np.max(np.abs(np.log10(finite)))) if finite.size else 1.0, 0.3)
    norm = LogNorm(vmin=10 ** -span, vmax=10 ** span)
    width = max(10.0, 1.1 * len(columns) + 3)
    fig, axes = plt.subplots(2, 2, figsize=(2 * width, 0.55 * len(ops["operators"]) * 2 + 4), squeeze=False)
    for ax, mode in zip(axes.ravel(), ("up_fwd", "up_fwdbwd", "down_fwd", "down_fwdbwd")):
        matrix = matrices[mode]
        image = ax.imshow(matrix, cmap="RdBu_r", norm=norm, aspect="auto")
        ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(ops["operators"])), ops["operators"], fontsize=9)
        ax.set_title(MODE_TITLES[mode], fontsize=10)
        for (row, col), value in np.ndenumerate(matrix):
            ax.text(col, row, _label(value), ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="time / baseline (log scale)")
    fig.suptitle(title or "Operator time relative to bilinear (up) and 2×2 avg-pool (down); 1 = baseline speed")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
