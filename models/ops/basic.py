"""Content-independent up/downsamplers (toy_protocol.md operator table), registered in MMEngine's root `MODELS`.

mmcv already registers 'nearest', 'bilinear' (nn.Upsample), 'deconv' (bare nn.ConvTranspose2d) and
'pixel_shuffle'; the project's variants use distinct keys:

| key | role | op |
|---|---|---|
| AvgPoolDown / MaxPoolDown | down | 2×2 average / max pooling (max: `forward_with_state` returns the indices) |
| StridedConvDown | down | conv 3×3 s2 p1 + BN + ReLU (the "deconv" pair's encoder side) |
| DeconvUp | up | ConvTranspose 3×3 s2 p1 op1 + BN + ReLU |
| SpaceToDepth / DepthToSpace | down / up | pixel unshuffle / pixel shuffle ×2 (C×4 / C÷4) |
| MaxUnpoolUp | up | max-unpooling with the paired indices |
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from models.registry import MODELS


def _require_even(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[-2] % 2 or x.shape[-1] % 2:
        raise ValueError(f"{name}: x must be N×C×H×W with even H and W, got {tuple(x.shape)}")


@MODELS.register_module(name="AvgPoolDown")
class AvgPoolDown(nn.Module):
    """2×2 average pooling: N×C×H×W -> N×C×H/2×W/2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _require_even("AvgPoolDown", x)
        return F.avg_pool2d(x, 2)


@MODELS.register_module(name="MaxPoolDown")
class MaxPoolDown(nn.Module):
    """2×2 max pooling; `forward_with_state` also returns the argmax indices for `MaxUnpoolUp`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _require_even("MaxPoolDown", x)
        return F.max_pool2d(x, 2)

    def forward_with_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×H×W -> (N×C×H/2×W/2, int64 indices of the same shape into each H×W plane)."""
        _require_even("MaxPoolDown", x)
        return F.max_pool2d(x, 2, return_indices=True)


def max_unpool2x(x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Max-unpooling ×2 as a scatter: x, indices N×C×h×w (flat indices into each 2h×2w plane) -> N×C×2h×2w.

    Same result as `F.max_unpool2d(x, indices, 2)`, but traceable (torch's version fails under jit tracing and
    ONNX export because it checks the output size with Python booleans on traced tensors).
    """
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, 4 * h * w).scatter(2, indices.reshape(n, c, h * w), x.reshape(n, c, h * w))
    return out.view(n, c, 2 * h, 2 * w)


@MODELS.register_module(name="MaxUnpoolUp")
class MaxUnpoolUp(nn.Module):
    """Max-unpooling ×2: puts each value at its pooled argmax, zeros elsewhere."""

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w, indices from `MaxPoolDown.forward_with_state` (same shape) -> N×C×2h×2w."""
        if indices.shape != x.shape:
            raise ValueError(f"MaxUnpoolUp: indices shape {tuple(indices.shape)} must equal x {tuple(x.shape)}")
        return max_unpool2x(x, indices)


@MODELS.register_module(name="StridedConvDown")
class StridedConvDown(nn.Module):
    """Learned downsampling: conv 3×3 stride 2 padding 1 (no bias) + BatchNorm + ReLU, C_in -> C_out."""

    def __init__(self, in_channels: int, out_channels: int | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        # The conv is created uninitialised: init_weights() draws its initial values.
        self.conv = skip_init(nn.Conv2d, in_channels, self.out_channels, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(self.out_channels)
        self.init_weights()

    def init_weights(self) -> None:
        """PyTorch's default initialisation (conv kaiming-uniform a=√5; BatchNorm γ=1, β=0)."""
        self.conv.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _require_even("StridedConvDown", x)
        return F.relu(self.bn(self.conv(x)))


@MODELS.register_module(name="DeconvUp")
class DeconvUp(nn.Module):
    """Learned ×2 upsampling: ConvTranspose 3×3 s2 p1 output_padding 1 (no bias) + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int | None = None, scale_factor: int = 2) -> None:
        super().__init__()
        if scale_factor != 2:
            raise ValueError(f"scale_factor must be 2 for DeconvUp, got {scale_factor}")
        self.in_channels, self.scale_factor = in_channels, scale_factor
        self.out_channels = in_channels if out_channels is None else out_channels
        # The transposed conv is created uninitialised: init_weights() draws its initial values.
        self.deconv = skip_init(nn.ConvTranspose2d, in_channels, self.out_channels, 3, stride=2, padding=1,
                                output_padding=1, bias=False)
        self.bn = nn.BatchNorm2d(self.out_channels)
        self.init_weights()

    def init_weights(self) -> None:
        """PyTorch's default initialisation (transposed conv kaiming-uniform a=√5; BatchNorm γ=1, β=0)."""
        self.deconv.reset_parameters()
        self.bn.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×C_in×h×w -> N×C_out×2h×2w."""
        return F.relu(self.bn(self.deconv(x)))


@MODELS.register_module(name="SpaceToDepth")
class SpaceToDepth(nn.Module):
    """Pixel unshuffle ×2: N×C×H×W -> N×4C×H/2×W/2 (channel c·4 + 2a + b holds pixel (2i+a, 2j+b))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _require_even("SpaceToDepth", x)
        return F.pixel_unshuffle(x, 2)


@MODELS.register_module(name="DepthToSpace")
class DepthToSpace(nn.Module):
    """Pixel shuffle ×2: N×C×h×w -> N×C/4×2h×2w (C divisible by 4)."""

    def __init__(self, scale_factor: int = 2) -> None:
        super().__init__()
        if scale_factor != 2:
            raise ValueError(f"scale_factor must be 2 for DepthToSpace, got {scale_factor}")
        self.scale_factor = scale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 4:
            raise ValueError(f"DepthToSpace: channels {x.shape[1]} not divisible by 4")
        return F.pixel_shuffle(x, 2)
