"""ASPP context module of the A2U matting network (spec 4.1, row 10; official `hlaspp.py`).

Five parallel branches on the (N, 256, H/16, W/16) encoder output: a 1×1 conv; three depthwise-separable
atrous 3×3 convs (dilation 6, 12, 18; each depthwise 3×3 + ABN, pointwise 1×1 + ABN); image pooling (global
average, 1×1 conv + ABN, nearest upsampling back). Concatenated (5·256) -> 1×1 conv + ABN -> Dropout(0.5) (`PortableDropout`: the same on every CPU vendor).

Deviation: the official branches use kaiming init; the network re-initialises every conv anyway (spec 5.3).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.matting.blocks import conv_abn


def depthwise_separable_abn(in_channels: int, out_channels: int, dilation: int) -> nn.Sequential:
    """Depthwise atrous 3×3 + ABN, then pointwise 1×1 + ABN: (N, C_in, h, w) -> (N, C_out, h, w)."""
    return nn.Sequential(conv_abn(in_channels, in_channels, 3, dilation=dilation, groups=in_channels),
                         conv_abn(in_channels, out_channels, 1))


class PortableDropout(nn.Dropout):
    """`nn.Dropout` whose mask comes from `torch.rand_like` (x · [u ≥ p] / (1 − p), u ~ U[0, 1)): the same
    distribution, drawn by torch's own generator on every CPU. `nn.Dropout` draws with `bernoulli_(p)`, whose CPU
    kernel uses Intel MKL's VSL stream on Intel processors and torch's generator elsewhere (PyTorch's
    `bernoulli_scalar_kernel`), so the same seed gave other masks, and other trained weights, on other vendors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep / (1.0 - self.p)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling with depthwise-separable atrous branches.

    Args:
        in_channels (int): input channels. Default: 256.
        out_channels (int): output channels. Default: 256.
        branch_channels (int): channels of each branch. Default: 256.
        dilations (Sequence[int]): dilations of the atrous branches (output stride 16). Default: (6, 12, 18).
        dropout (float): dropout probability after the projection. Default: 0.5.
    """

    def __init__(self, in_channels: int = 256, out_channels: int = 256, branch_channels: int = 256,
                 dilations: Sequence[int] = (6, 12, 18), dropout: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dilations = tuple(dilations)
        self.pointwise = conv_abn(in_channels, branch_channels, 1)
        self.atrous = nn.ModuleList(depthwise_separable_abn(in_channels, branch_channels, d) for d in dilations)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_abn(in_channels, branch_channels, 1))
        self.project = conv_abn(branch_channels * (len(self.dilations) + 2), out_channels, 1)
        self.dropout = PortableDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, h, w) -> (N, C_out, h, w)."""
        pooled = F.interpolate(self.image_pool(x), size=x.shape[-2:], mode="nearest")
        branches = [self.pointwise(x), *(branch(x) for branch in self.atrous), pooled]
        return self.dropout(self.project(torch.cat(branches, dim=1)))
