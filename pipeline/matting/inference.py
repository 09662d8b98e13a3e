"""Full-resolution matting inference as the official A2U test script does it (spec 5.4).

1. Reflect-pad the image and trimap at the bottom/right to a multiple of the network stride (16).
2. Build the 4-channel input (`models.matting.inputs.build_network_input`) and run the model whole, or in
   overlapping tiles (`tiling.tiled_forward`) to bound memory.
3. Crop back to H×W, clip to [0, 1], ×255, truncate to uint8 (the official `astype(np.uint8)`), and paste the
   trimap's known regions (0 where trimap is 0, 255 where it is 255).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from models.matting.inputs import NETWORK_STRIDE, build_network_input
from pipeline.matting.tiling import tiled_forward

ModelFn = Callable[[torch.Tensor], torch.Tensor]


def pad_to_multiple(array: np.ndarray, stride: int) -> np.ndarray:
    """Reflect-pad an H×W or H×W×C array at the bottom/right so H and W become multiples of `stride`."""
    pad_h, pad_w = (-array.shape[0]) % stride, (-array.shape[1]) % stride
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="reflect") if (pad_h or pad_w) else array


def finalize_alpha(raw_alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Raw H×W network output → uint8 H×W prediction: clip to [0, 1], ×255, truncate, paste known regions."""
    if raw_alpha.shape != trimap.shape:
        raise ValueError(f"raw alpha {raw_alpha.shape} and trimap {trimap.shape} must have the same H×W")
    if not np.isfinite(raw_alpha).all():
        raise ValueError(f"raw alpha holds {int((~np.isfinite(raw_alpha)).sum())} non-finite values (NaN/inf)")
    alpha = (np.clip(raw_alpha.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    alpha[trimap == 0] = 0
    alpha[trimap == 255] = 255
    return alpha


def _check_inputs(image: np.ndarray, trimap: np.ndarray, stride: int) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H×W×3 uint8 RGB, got {image.shape} {image.dtype}")
    if trimap.dtype != np.uint8 or trimap.shape != image.shape[:2]:
        raise ValueError(f"trimap must be H×W uint8 matching the image {image.shape[:2]}, got {trimap.shape} "
                         f"{trimap.dtype}")
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")


def predict_raw_alpha(model_fn: ModelFn, image: np.ndarray, trimap: np.ndarray, stride: int = NETWORK_STRIDE,
                      tile: int | None = None, overlap: int | None = None,
                      device: str | torch.device = "cpu") -> np.ndarray:
    """The model's raw alpha for one image, cropped back to H×W (float32, not clipped).

    Args:
        model_fn (callable): maps a float tensor N×4×H×W to raw alpha N×1×H×W (e.g. an eval-mode nn.Module).
        image (np.ndarray): H×W×3 uint8 RGB.
        trimap (np.ndarray): H×W uint8, 0/128/255.
        stride (int): pad H and W to a multiple of this. Default: 16.
        tile (int | None): tile size (a multiple of `stride`) for tiled inference; None runs the whole image.
        overlap (int | None): tile overlap; None = a quarter of the tile.
        device (str | torch.device): where the input tensor is sent. Default: 'cpu'.
    """
    _check_inputs(image, trimap, stride)
    height, width = trimap.shape
    image_p, trimap_p = pad_to_multiple(image, stride), pad_to_multiple(trimap, stride)
    image_t = torch.from_numpy(np.ascontiguousarray(image_p)).permute(2, 0, 1)[None]
    trimap_t = torch.from_numpy(np.ascontiguousarray(trimap_p))[None, None]
    inputs = build_network_input(image_t, trimap_t).to(device)
    with torch.inference_mode():
        if tile is None:
            raw = model_fn(inputs)
        else:
            raw = tiled_forward(model_fn, inputs, tile=tile, stride=stride, overlap=overlap)
    expected = (1, 1) + tuple(inputs.shape[-2:])
    if tuple(raw.shape) != expected:
        raise ValueError(f"model returned shape {tuple(raw.shape)} for input {tuple(inputs.shape)}; expected "
                         f"{expected}")
    return raw[0, 0, :height, :width].float().cpu().numpy()


def predict_alpha(model_fn: ModelFn, image: np.ndarray, trimap: np.ndarray, stride: int = NETWORK_STRIDE,
                  tile: int | None = None, overlap: int | None = None,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Full-resolution prediction for one image: H×W uint8 alpha with the trimap's known regions pasted.

    Same arguments as `predict_raw_alpha`.
    """
    raw = predict_raw_alpha(model_fn, image, trimap, stride=stride, tile=tile, overlap=overlap, device=device)
    return finalize_alpha(raw, trimap)
