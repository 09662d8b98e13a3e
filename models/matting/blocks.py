"""Conv bricks of the A2U matting network (spec 4.1).

"ABN" in the official code is mapillary's inplace-ABN: BatchNorm followed by LeakyReLU(0.01); "ABN-id" is the
same BatchNorm without the activation. Here both are an mmcv `ConvModule` with a plain `BN` (the training
engineer converts to SyncBN with mmengine's helpers), so parameter counts equal the official model's.

Blocks:
    - `conv_abn`: conv (no bias) + BN (+ LeakyReLU).
    - `BasicBlock`: ResNet basic block (encoder), activation after the residual add.
    - `PairDownsamplingBlock`: the first block of layer2/layer3, whose stride is replaced by an operator pair's
      `down` after conv1 (the 1×1 shortcut stays strided).
    - `ResBlock`: the decoder's "residual_conv" block, with a 1×1 projection when channels change.
    - `ChannelPreservingPair`: wraps an operator pair so down/up keep the channel count (1×1 convs for
      space-to-depth pairs such as pixel shuffle).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import nn

#: LeakyReLU slope of inplace-ABN's default activation.
LEAKY_SLOPE = 0.01
NORM_CFG = dict(type="BN")
ACT_CFG = dict(type="LeakyReLU", negative_slope=LEAKY_SLOPE)

#: A `down` callable of an operator pair: x -> (low-resolution x, state for the matching `up`).
DownFn = Callable[[torch.Tensor], tuple[torch.Tensor, Any]]


def conv_abn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1,
             groups: int = 1, activate: bool = True) -> ConvModule:
    """Conv (no bias, 'same' padding) + BN, followed by LeakyReLU(0.01) when `activate` ("ABN" vs "ABN-id")."""
    padding = dilation * (kernel_size - 1) // 2
    return ConvModule(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=False, norm_cfg=NORM_CFG, act_cfg=ACT_CFG if activate else None)


class BasicBlock(nn.Module):
    """ResNet basic block: conv3×3+ABN, conv3×3+ABN-id, add the identity, LeakyReLU. (N, C, H, W) -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_abn(channels, channels, 3)
        self.conv2 = conv_abn(channels, channels, 3, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv2(self.conv1(x)) + x, LEAKY_SLOPE)


class PairDownsamplingBlock(nn.Module):
    """First block of layer2/layer3 with its ×2 stage delegated to an operator pair.

    conv3×3 s1 + ABN -> x0 (N, C_out, H, W); `down(x0)` -> (N, C_out, H/2, W/2); conv3×3 + ABN-id; plus the
    strided 1×1 shortcut + ABN-id of the input; LeakyReLU. Mirrors the official `ResidualBlock_bilinear`.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = conv_abn(in_channels, out_channels, 3)
        self.conv2 = conv_abn(out_channels, out_channels, 3, activate=False)
        self.shortcut = conv_abn(in_channels, out_channels, 1, stride=2, activate=False)

    def forward(self, x: torch.Tensor, down: DownFn) -> tuple[torch.Tensor, Any]:
        """Returns the (N, C_out, H/2, W/2) output and the pair state for the decoder's `up`."""
        low, state = down(self.conv1(x))
        out = F.leaky_relu(self.conv2(low) + self.shortcut(x), LEAKY_SLOPE)
        return out, state


class ResBlock(nn.Module):
    """Decoder residual block ("residual_conv"): two k×k conv+BN, 1×1 projection if C_in != C_out, LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = conv_abn(in_channels, out_channels, kernel_size)
        self.conv2 = conv_abn(out_channels, out_channels, kernel_size, activate=False)
        self.projection = (conv_abn(in_channels, out_channels, 1, activate=False)
                           if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.projection is None else self.projection(x)
        return F.leaky_relu(self.conv2(self.conv1(x)) + residual, LEAKY_SLOPE)


class ChannelPreservingPair(nn.Module):
    """An operator pair whose `down` and `up` both keep `channels` channels.

    Most pairs already do (`down_channel_factor == up_channel_divisor == 1`) and are used unchanged. A
    space-to-depth pair (pixel shuffle: down gives 4C channels, up gives C/4) gets a bias-free 1×1 conv
    4C -> C after `down` and C -> 4C before `up`. This is our adaptation (the official code has no such
    variant); it adds 2·4·C² parameters per stage.

    Args:
        pair (nn.Module): an `OperatorPair` built for `channels`.
        channels (int): channels of the encoder feature it downsamples and of the decoder feature it upsamples.
    """

    def __init__(self, pair: nn.Module, channels: int) -> None:
        super().__init__()
        self.op = pair
        down_factor = int(getattr(pair, "down_channel_factor", 1))
        up_divisor = int(getattr(pair, "up_channel_divisor", 1))
        self.down_projection = (nn.Conv2d(channels * down_factor, channels, 1, bias=False)
                                if down_factor != 1 else None)
        self.up_projection = (nn.Conv2d(channels, channels * up_divisor, 1, bias=False)
                              if up_divisor != 1 else None)

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(N, C, H, W) -> ((N, C, H/2, W/2), state)."""
        low, state = self.op.down(x)
        return (low if self.down_projection is None else self.down_projection(low)), state

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        """(N, C, h, w) and the state of the matching `down` -> (N, C, 2h, 2w)."""
        x = x if self.up_projection is None else self.up_projection(x)
        return self.op.up(x, state)
