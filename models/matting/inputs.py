"""The matting network's input convention (spec 4.1), shared by training, evaluation and export.

Input = 4×H×W: RGB/255 normalised with the ImageNet mean/std, then trimap/255 (∈ {0, 0.502, 1}).
"""
from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Inputs are reflect-padded to a multiple of this at test time (the network's output stride).
NETWORK_STRIDE = 16


def build_network_input(image: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Stack the normalised image and the trimap into the network input.

    Args:
        image: N×3×H×W RGB, either uint8 (0–255) or float already in [0, 1].
        trimap: N×1×H×W, uint8 (0/128/255) or float in [0, 1].

    Returns:
        N×4×H×W float32 tensor.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be N×3×H×W, got {tuple(image.shape)}")
    if trimap.ndim != 4 or trimap.shape[1] != 1 or trimap.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"trimap must be N×1×H×W matching the image {tuple(image.shape)}, got {tuple(trimap.shape)}")
    img = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    tri = trimap.float() / 255.0 if trimap.dtype == torch.uint8 else trimap.float()
    mean = img.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = img.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return torch.cat([(img - mean) / std, tri], dim=1)
