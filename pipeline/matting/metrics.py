"""Matting errors SAD, MSE, Gradient and Connectivity with the semantics of the original MATLAB code.

The reference is Ning Xu's evaluation code of Deep Image Matting (`compute_sad_loss.m`, `compute_mse_loss.m`,
`compute_gradient_loss.m` + `gaussgradient.m`, `compute_connectivity_error.m`), scaled as the official drivers
(`test_withpic.m`, `hleval.m`) print it. Inputs are H×W mattes in 0–255 (uint8 as read from PNG) and a trimap
holding exactly 0/128/255. Every metric is restricted to the unknown region U = {trimap == 128}; nothing outside
U counts, even where the ground truth disagrees with the trimap.

- SAD  = Σ_U |P − G| / 255 / 1000.
- MSE  = Σ_U ((P − G) / 255)² / |U|, not scaled; defined as 0 when |U| = 0 (MATLAB would return NaN = 0/0).
- Grad = Σ_U (|∇P| − |∇G|)² / 1000, each matte first min–max normalised on its own (`mat2gray`; a constant
  matte has zero gradient whatever its level), ∇ = 9×9 Gaussian-derivative filters (σ = 1.4, half-size
  ceil(σ·sqrt(−2·ln(sqrt(2π)·σ·0.01))) = 4, L2-normalised), replicate borders; amplitudes cast to single.
- Conn = Σ_U |φ_P − φ_G| / 1000 with thresholds 0:0.1:1 on P/255 and G/255 **in single precision**; for each
  threshold the largest 4-connected component of (P ≥ t) ∧ (G ≥ t) (first in column-major order on ties)
  decides the level l of the pixels not yet assigned; φ = 1 − d·[d ≥ 0.15], d = alpha − l. A threshold whose
  intersection is empty assigns nothing (the reference's `omega(cc.PixelIdxList{[]}) = 1` sets every pixel),
  so the still unassigned pixels keep l = 1.

Single precision matters for Conn only: 51, 102, 153 and 204 are exactly 0.2/0.4/0.6/0.8 of 255; in float32
they round up and pass the threshold, in float64 they fall just below it. Sums are accumulated in float64 here
(the reference sums single values); on the golden cases this agrees to ≤ 2e-6 relative (tests: 1e-5).

Known differences from Python ports, measured on the 45 golden cases of the test suite (relative error of
the port against the reference: median / max over the 39 real cases, then the worst synthetic case; computed
with re-implementations of each port's formulas in a scratch script, the ports are not shipped):

- mmagic 1.2.0 (`SAD`, `MattingMSE`, `GradientError`, `ConnectivityError`):
  SAD and MSE sum over the whole image: 0 / +0.03% (SAD), 0 / +0.4% (MSE, GT04 where 7 ground-truth pixels
  contradict the trimap); `syn_gt255_block` +200% (0.768 vs 0.256, 3.0 vs 1.0).
  Grad (OpenCV min–max, float64): agrees (≤ 1e-6). Conn (float64 alphas, so 51/102/153/204 miss their
  threshold; mask zeroed on an empty intersection): +0.26% / +1.4%; `syn_constpred` +96% (1.406 vs 0.717).
- GCA-Matting `utils/evaluate.py`: SAD/MSE agree. Grad without min–max normalisation (÷255): agrees where
  both mattes span 0–255, `syn_allunknown` +708%. Conn whose "largest component" can be background label 0:
  +0.46% / +315% (GT05_noise).
- A2U repository `scripts/utils.py`: min–max normalises P and G to 0–255 before every metric: SAD/MSE agree
  where both span 0–255, `syn_gt255_block` −100%, `syn_constpred` MSE +112%. Grad via
  `scipy.ndimage.gaussian_filter(order=1)` ÷10: +3.8% / +4.3%, `syn_allunknown` −25%. Conn (float64 alphas,
  skips empty thresholds like the reference): +0.26% / +1.4%.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import cv2
import numpy as np

#: Scale the official drivers apply to SAD, Grad and Conn (per image, before averaging).
METRIC_SCALE = 1000.0
GRADIENT_SIGMA = 1.4
CONNECTIVITY_STEP = 0.1
UNKNOWN_VALUE = 128
METRIC_NAMES = ("sad", "mse", "grad", "conn")


# ----------------------------------------------------------------------------------------------- checks
def _as_matte(arr: np.ndarray, name: str) -> np.ndarray:
    """Validate an H×W matte in 0–255 and return it as float64 (exact for uint8)."""
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an H×W matte, got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold numbers in 0–255, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{name} must lie in 0–255, got range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.float64)


def _unknown_mask(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    """Validate the three inputs (same H×W; trimap only 0/128/255) and return (P, G, U) as float64/bool."""
    p, g = _as_matte(pred, "pred"), _as_matte(gt, "gt")
    t = np.asarray(trimap)
    if t.ndim != 2:
        raise ValueError(f"trimap must be H×W, got shape {t.shape}")
    if not (p.shape == g.shape == t.shape):
        raise ValueError(f"pred {p.shape}, gt {g.shape} and trimap {t.shape} must have the same H×W")
    bad = np.setdiff1d(np.unique(t), (0, 128, 255))
    if bad.size:
        raise ValueError(f"trimap holds values {bad[:8].tolist()} outside {{0, 128, 255}}"
                         + (" (127 is not the unknown value: use 128)" if 127 in bad else ""))
    return p, g, t == UNKNOWN_VALUE


# ----------------------------------------------------------------------------------------------- SAD / MSE
def sad(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Sum of absolute differences over the unknown region, in alpha units (/255), divided by 1000."""
    return _sad(*_unknown_mask(pred, gt, trimap))


def _sad(p: np.ndarray, g: np.ndarray, unknown: np.ndarray) -> float:
    return float(np.abs(p - g)[unknown].sum() / 255.0 / METRIC_SCALE)


def mse(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Mean squared error over the unknown region, in alpha units; 0.0 when there are no unknown pixels."""
    return _mse(*_unknown_mask(pred, gt, trimap))


def _mse(p: np.ndarray, g: np.ndarray, unknown: np.ndarray) -> float:
    count = int(unknown.sum())
    if count == 0:
        return 0.0
    return float((((p - g) / 255.0) ** 2)[unknown].sum() / count)


# ----------------------------------------------------------------------------------------------- Grad
def gaussian_derivative_kernels(sigma: float = GRADIENT_SIGMA, epsilon: float = 1e-2) -> tuple[np.ndarray,
                                                                                              np.ndarray]:
    """The separable factors of `gaussgradient.m`'s x-kernel: hx[i, j] = gauss(i)·dgauss(j) / ‖·‖₂.

    Returns (gauss (K,), dgauss (K,)) with K = 2·halfsize + 1 and the L2 norm folded into `dgauss`, so that
    np.outer(gauss, dgauss) is the reference's hx (9×9 for σ = 1.4) and its transpose is hy.
    """
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon)))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-offsets ** 2 / (2.0 * sigma ** 2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -offsets * gauss / sigma ** 2
    norm = math.sqrt(float(np.sum(np.outer(gauss, dgauss) ** 2)))
    return gauss, dgauss / norm


def _mat2gray(matte: np.ndarray) -> np.ndarray:
    """Min–max normalise to [0, 1] in float64; a constant matte maps to zeros (its gradient is 0 either way)."""
    lo, hi = float(matte.min()), float(matte.max())
    if hi == lo:
        return np.zeros_like(matte)
    return (matte - lo) / (hi - lo)


def gradient_magnitude(matte: np.ndarray, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """|∇| of `gaussgradient(mat2gray(matte), sigma)` with replicate borders, H×W float64.

    OpenCV correlates where `imfilter(..., 'conv')` convolves; the odd derivative factor only flips the sign of
    each component, so the magnitude is the same.
    """
    gauss, dgauss = gaussian_derivative_kernels(sigma)
    img = _mat2gray(matte)
    gx = cv2.sepFilter2D(img, cv2.CV_64F, dgauss, gauss, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(img, cv2.CV_64F, gauss, dgauss, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> float:
    """Σ_U (|∇P| − |∇G|)² with the amplitudes in single precision, divided by 1000."""
    return _gradient_error(*_unknown_mask(pred, gt, trimap))


def _gradient_error(p: np.ndarray, g: np.ndarray, unknown: np.ndarray) -> float:
    diff = gradient_magnitude(p).astype(np.float32) - gradient_magnitude(g).astype(np.float32)
    return float(np.sum((diff * diff)[unknown], dtype=np.float64) / METRIC_SCALE)


# ----------------------------------------------------------------------------------------------- Conn
def _largest_component(mask: np.ndarray) -> np.ndarray | None:
    """Boolean mask of the largest 4-connected component of `mask` (MATLAB's first on ties), or None if empty.

    `bwconncomp` numbers components in column-major order and `max` returns the first maximum; OpenCV's
    numbering is not specified, so ties are broken explicitly by the smallest column-major pixel index.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=4,
                                                                ltype=cv2.CV_32S)
    if count <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    best = np.flatnonzero(areas == areas.max()) + 1
    if best.size > 1:
        rows, cols = np.nonzero(np.isin(labels, best))
        order = cols.astype(np.int64) * mask.shape[0] + rows
        best_label = labels[rows[np.argmin(order)], cols[np.argmin(order)]]
    else:
        best_label = best[0]
    return labels == best_label


def _level_map(p: np.ndarray, g: np.ndarray, step: float) -> np.ndarray:
    """The per-pixel level l of `compute_connectivity_error.m` (H×W float64; never-assigned pixels get 1)."""
    n_steps = int(round(1.0 / step))
    thresholds = np.array([k * step for k in range(n_steps + 1)], dtype=np.float64)
    level = np.full(p.shape, -1.0)
    for i in range(1, thresholds.size):
        both = (p >= thresholds[i]) & (g >= thresholds[i])
        component = _largest_component(both)
        if component is None:
            break  # nothing above this threshold, nor above any higher one: the reference assigns nothing
        level[(level == -1.0) & ~component] = thresholds[i - 1]
    level[level == -1.0] = 1.0
    return level


def connectivity_error(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray, step: float = CONNECTIVITY_STEP) -> float:
    """Σ_U |φ_P − φ_G| with alphas in single precision and threshold step `step`, divided by 1000."""
    if not 0.0 < step <= 1.0:
        raise ValueError(f"step must lie in (0, 1], got {step}")
    return _connectivity_error(*_unknown_mask(pred, gt, trimap), step=step)


def _connectivity_error(p64: np.ndarray, g64: np.ndarray, unknown: np.ndarray,
                        step: float = CONNECTIVITY_STEP) -> float:
    p = (p64.astype(np.float32) / np.float32(255.0)).astype(np.float64)
    g = (g64.astype(np.float32) / np.float32(255.0)).astype(np.float64)
    level = _level_map(p, g, step)
    p_d = (p - level).astype(np.float32)
    g_d = (g - level).astype(np.float32)
    p_phi = 1.0 - p_d * (p_d >= 0.15)
    g_phi = 1.0 - g_d * (g_d >= 0.15)
    return float(np.sum(np.abs(p_phi - g_phi)[unknown], dtype=np.float64) / METRIC_SCALE)


# ----------------------------------------------------------------------------------------------- all four
METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "sad": sad, "mse": mse, "grad": gradient_error, "conn": connectivity_error}
_ON_VALIDATED = {"sad": _sad, "mse": _mse, "grad": _gradient_error, "conn": _connectivity_error}


def compute_matting_metrics(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    """All four errors for one image, as {'sad', 'mse', 'grad', 'conn'} (scaled as the papers print them)."""
    checked = _unknown_mask(pred, gt, trimap)
    return {name: fn(*checked) for name, fn in _ON_VALIDATED.items()}


def benchmark_metrics(size: int = 800, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Median seconds per call of each metric on a synthetic size×size case (a blurred disc, noisy prediction).

    Meant for the bench stage; single-threaded OpenCV so the number is per core.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc = (np.hypot(yy - size / 2, xx - size / 2) < size / 3).astype(np.float64) * 255.0
    gt = np.clip(cv2.GaussianBlur(disc, (0, 0), size / 80), 0, 255).astype(np.uint8)
    pred = np.clip(gt + rng.normal(0, 12, gt.shape), 0, 255).astype(np.uint8)
    trimap = np.where(gt == 0, 0, np.where(gt == 255, 255, 128)).astype(np.uint8)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        timings = {}
        for name, fn in METRIC_FUNCTIONS.items():
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn(pred, gt, trimap)
                runs.append(time.perf_counter() - start)
            timings[name] = float(np.median(runs))
    finally:
        cv2.setNumThreads(threads)
    timings["size"] = float(size)
    return timings
