"""Overlapping-tile forward pass that bounds memory on very large images.

The padded input (1×4×H×W, H and W multiples of the network stride) is cut into tiles of `tile`×`tile` whose
origins are multiples of the stride, so every tile sees the same stride-aligned grid as the whole image. Each
tile's raw alpha is weighted by a ramp that falls linearly to a small value over `overlap` pixels at every
edge shared with another tile (not at the image border), and the weighted sum is divided by the summed
weights. Only one tile is on the device at a time.
"""
from __future__ import annotations

from typing import Callable

import torch

ModelFn = Callable[[torch.Tensor], torch.Tensor]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Origins of the tiles along one axis: step `tile − overlap`, the last tile flush with the end."""
    if tile >= length:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(size: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weight: 1 inside, linear (1/(overlap+1) … overlap/(overlap+1)) over ramped ends."""
    weight = torch.ones(size, dtype=torch.float32)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    n = min(overlap, size)
    if ramp_start:
        weight[:n] = torch.minimum(weight[:n], ramp[:n])
    if ramp_end:
        weight[size - n:] = torch.minimum(weight[size - n:], ramp[:n].flip(0))
    return weight


def check_tile_size(tile: int, stride: int, overlap: int) -> None:
    """Raise ValueError naming `tile`/`overlap` unless both are stride multiples and 0 < overlap < tile."""
    if tile <= 0 or tile % stride:
        raise ValueError(f"tile must be a positive multiple of the network stride {stride}, got {tile}")
    if overlap <= 0 or overlap % stride or overlap >= tile:
        raise ValueError(f"overlap must be a multiple of the stride {stride} in (0, tile={tile}), got {overlap}")


def default_overlap(tile: int, stride: int) -> int:
    """A quarter of the tile, rounded down to the stride (at least one stride)."""
    return max(stride, (tile // 4) // stride * stride)


def tiled_forward(model_fn: ModelFn, inputs: torch.Tensor, tile: int, stride: int,
                  overlap: int | None = None) -> torch.Tensor:
    """Run `model_fn` tile by tile on `inputs` (1×C×H×W, H, W multiples of `stride`); returns 1×1×H×W raw alpha.

    The result stays on the inputs' device; tiles are blended as described in the module docstring.
    """
    overlap = default_overlap(tile, stride) if overlap is None else overlap
    check_tile_size(tile, stride, overlap)
    if inputs.ndim != 4 or inputs.shape[0] != 1:
        raise ValueError(f"inputs must be 1×C×H×W, got {tuple(inputs.shape)}")
    height, width = inputs.shape[-2:]
    if height % stride or width % stride:
        raise ValueError(f"inputs {height}×{width} must be padded to a multiple of the stride {stride}")
    total = inputs.new_zeros((1, 1, height, width), dtype=torch.float32)
    weights = inputs.new_zeros((1, 1, height, width), dtype=torch.float32)
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    for top in rows:
        tile_h = min(tile, height)
        w_row = _ramp(tile_h, overlap, top > 0, top + tile_h < height)
        for left in cols:
            tile_w = min(tile, width)
            w_col = _ramp(tile_w, overlap, left > 0, left + tile_w < width)
            out = model_fn(inputs[:, :, top:top + tile_h, left:left + tile_w])
            if out.shape != (1, 1, tile_h, tile_w):
                raise ValueError(f"model returned {tuple(out.shape)} for a tile of {tile_h}×{tile_w}; "
                                 f"expected (1, 1, {tile_h}, {tile_w})")
            weight = (w_row[:, None] * w_col[None, :]).to(total.device)
            total[:, :, top:top + tile_h, left:left + tile_w] += out.float() * weight
            weights[:, :, top:top + tile_h, left:left + tile_w] += weight
    return total / weights
