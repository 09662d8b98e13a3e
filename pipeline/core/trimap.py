"""Trimaps from alpha mattes: random erosion for training, seeded (fixed) trimaps for validation and test.

The training rule follows GCA-Matting and A2U (a2u_spec.md §5.1 step 5): the definite foreground (α = 255) and
the definite background (α = 0) are each eroded by an elliptical kernel whose size is drawn independently from
U{1..29}; everything else is unknown. Every fractional-alpha pixel is therefore unknown by construction.
Values are exactly 0 (background), 128 (unknown) and 255 (foreground).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

FOREGROUND, UNKNOWN, BACKGROUND = 255, 128, 0


@functools.lru_cache(maxsize=64)
def elliptical_kernel(size: int) -> np.ndarray:
    """The size×size elliptical structuring element (cached; size ≥ 1)."""
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def trimap_from_kernels(alpha: np.ndarray, fg_kernel: int, bg_kernel: int) -> np.ndarray:
    """Erode {α = 255} by `fg_kernel` and {α = 0} by `bg_kernel`; the rest is unknown.

    alpha: H×W uint8. Returns H×W uint8 with values in {0, 128, 255}.
    """
    if alpha.ndim != 2 or alpha.dtype != np.uint8:
        raise ValueError(f"alpha must be an H×W uint8 array, got shape {alpha.shape} dtype {alpha.dtype}")
    fg = cv2.erode((alpha == 255).astype(np.uint8), elliptical_kernel(int(fg_kernel)))
    bg = cv2.erode((alpha == 0).astype(np.uint8), elliptical_kernel(int(bg_kernel)))
    trimap = np.full(alpha.shape, UNKNOWN, np.uint8)
    trimap[fg.astype(bool)] = FOREGROUND
    trimap[bg.astype(bool)] = BACKGROUND
    return trimap


def random_trimap(alpha: np.ndarray, rng: np.random.Generator,
                  kernel_range: tuple[int, int] = (1, 29)) -> np.ndarray:
    """Training trimap: fg and bg eroded by independent elliptical kernels of size U{lo..hi} (inclusive).

    alpha: H×W uint8 (0–255); rng: the caller's seeded generator. Returns H×W uint8 in {0, 128, 255}.
    """
    lo, hi = int(kernel_range[0]), int(kernel_range[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"kernel_range must satisfy 1 <= lo <= hi, got {kernel_range}")
    fg_kernel, bg_kernel = rng.integers(lo, hi + 1, size=2)
    return trimap_from_kernels(alpha, int(fg_kernel), int(bg_kernel))


def fixed_trimap(alpha: np.ndarray, seed: int | list[int],
                 kernel_range: tuple[int, int] = (1, 29)) -> np.ndarray:
    """Validation/test trimap: `random_trimap` with a generator seeded by `seed`, so it can be stored once."""
    return random_trimap(alpha, np.random.default_rng(seed), kernel_range)


def unknown_fraction(trimap: np.ndarray) -> float:
    """Share of pixels marked unknown (128)."""
    return float(np.mean(trimap == UNKNOWN))
