"""Slow, obviously-correct loop transcriptions of the two reassembly formulas (float64), for the verify stage.

Upsampling (CARAFE-naive semantics, window s×s centred on the source pixel, out-of-map terms skipped):
    out[c, i, j] = Σ_{a,b ∈ [−R, R]} K[g·s² + (a+R)·s + (b+R), i, j] · x[c, ⌊i/r⌋ + a, ⌊j/r⌋ + b]
with R = (s−1)/2.
Downsampling (A2D, even window k×k, output (i, j) covering rows 2i − (k−2)/2 … 2i + k/2):
    out[c, i, j] = Σ_{dy, dx < k} K[g·k² + dy·k + dx, i, j] · x[c, 2i − (k−2)/2 + dy, 2j − (k−2)/2 + dx]
with g = ⌊c / (C/G)⌋. Written independently of `models/ops/kernels` (whose fast paths they check).
"""
from __future__ import annotations

import torch


def upsample_loop(x: torch.Tensor, kernels: torch.Tensor, s: int, groups: int, r: int = 2) -> torch.Tensor:
    """x: N×C×h×w, kernels: N×(G·s²)×(r·h)×(r·w) -> N×C×(r·h)×(r·w)."""
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * r, w * r, dtype=x.dtype)
    radius, per_group = (s - 1) // 2, c // groups
    for i in range(h * r):
        for j in range(w * r):
            for a in range(-radius, radius + 1):
                for b in range(-radius, radius + 1):
                    yi, xj = i // r + a, j // r + b
                    if not (0 <= yi < h and 0 <= xj < w):
                        continue
                    for g in range(groups):
                        weight = kernels[:, g * s * s + (a + radius) * s + (b + radius), i, j]
                        block = slice(g * per_group, (g + 1) * per_group)
                        out[:, block, i, j] += weight[:, None] * x[:, block, yi, xj]
    return out


def downsample_loop(x: torch.Tensor, kernels: torch.Tensor, k: int, groups: int) -> torch.Tensor:
    """x: N×C×H×W (H, W even), kernels: N×(G·k²)×(H/2)×(W/2) -> N×C×(H/2)×(W/2)."""
    n, c, hh, ww = x.shape
    out = torch.zeros(n, c, hh // 2, ww // 2, dtype=x.dtype)
    before, per_group = (k - 2) // 2, c // groups
    for i in range(hh // 2):
        for j in range(ww // 2):
            for dy in range(k):
                for dx in range(k):
                    yi, xj = 2 * i - before + dy, 2 * j - before + dx
                    if not (0 <= yi < hh and 0 <= xj < ww):
                        continue
                    for g in range(groups):
                        weight = kernels[:, g * k * k + dy * k + dx, i, j]
                        block = slice(g * per_group, (g + 1) * per_group)
                        out[:, block, i, j] += weight[:, None] * x[:, block, yi, xj]
    return out
