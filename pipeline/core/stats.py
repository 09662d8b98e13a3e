"""Seed statistics shared by the toy and matting studies: mean ± std over seeds, and paired differences.

Runs of two variants with the same seed share the data order and the seeded initialisation around the
operator, so a comparison to the baseline is paired by seed: for seeds s = 1..n, d_s = value(variant, s) −
value(baseline, s); the interval is mean(d) ± t(0.5 + confidence/2, n−1) · sd(d) / √n (Student's t;
`scipy.stats.t`). A difference is called significant when its interval excludes 0. With 3 seeds t(0.975, 2) =
4.30, so only differences several times larger than their seed-to-seed spread qualify: the interval reflects
training noise between seeds, not the sampling of the test images.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def paired_difference(values: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
                      ) -> dict[str, Any]:
    """Paired difference `values − baseline` (same seed order): mean, its `confidence` t-interval, significance.

    With a single seed the interval is undefined (None) and nothing is called significant.
    """
    if len(values) != len(baseline) or not values:
        raise ValueError(f"paired_difference needs equally many seeds, got {len(values)} and {len(baseline)}")
    diffs = np.asarray(values, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    n = len(diffs)
    out: dict[str, Any] = {"n": n, "diffs": [float(d) for d in diffs], "mean": float(diffs.mean()),
                           "confidence": confidence, "interval": None, "significant": False}
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n))
        low, high = out["mean"] - half, out["mean"] + half
        out["interval"] = [low, high]
        out["significant"] = bool(low > 0 or high < 0)
    return out


def describe_difference(operator: str, baseline: str, diff: dict[str, Any], unit: str = "dB") -> str:
    """One sentence, e.g. 'a2u is 1.23 dB below bilinear (95% CI −2.0 to −0.4 dB; significant).'"""
    if diff["interval"] is None:
        return (f"{operator} differs from {baseline} by {diff['mean']:+.2f} {unit} (one seed: no interval, "
                f"not tested)")
    low, high = diff["interval"]
    side = "above" if diff["mean"] > 0 else "below"
    verdict = "significant" if diff["significant"] else "not significant: the interval includes 0"
    return (f"{operator} is {abs(diff['mean']):.2f} {unit} {side} {baseline} "
            f"({round(diff['confidence'] * 100)}% CI {low:+.2f} to {high:+.2f} {unit}; {verdict}).")
