"""Seed statistics of the toy study: curves and plateaus; mean ± std and the paired difference to the baseline
(by seed, Student-t interval) come from `pipeline.core.stats`, shared with the matting study."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.core.stats import describe_difference, mean_std, paired_difference

__all__ = ["describe_difference", "mean_curve", "mean_std", "paired_difference", "plateau_epoch"]


def mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    """Epoch-wise mean of per-seed curves (each a list over epochs 1..E; all the same length)."""
    lengths = {len(c) for c in curves}
    if len(lengths) != 1:
        raise ValueError(f"seed curves have different lengths {sorted(lengths)}")
    return [float(v) for v in np.mean(np.asarray(curves, dtype=np.float64), axis=0)]


def plateau_epoch(curve: Sequence[float], tolerance: float = 0.1) -> int | None:
    """First epoch after which the curve never rises by more than `tolerance`; None if it still rises at the end.

    The last epoch alone never counts as a plateau (there is nothing after it to compare with).
    """
    for i in range(len(curve) - 1):
        if max(curve[i:]) - curve[i] <= tolerance:
            return i + 1
    return None
