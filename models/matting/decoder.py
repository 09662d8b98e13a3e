"""Decoder and prediction head of the A2U matting network (spec 4.1, rows 11–15; official `decoder.py`).

Four stages, each: upsample ×2 with the matching operator pair's `up` (its state from the encoder), **add**
a 3×3 conv + ABN projection of the skip feature, then two ResBlocks. Stages consume the pair states in
reverse order (pair 3 first). Head: conv3×3 32->1 + ABN(1) (with its LeakyReLU), conv3×3 1->1 without bias.
The output is a raw alpha (no sigmoid).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from models.matting.blocks import ResBlock, conv_abn
from models.matting.encoder import EncoderFeatures


class DecoderStage(nn.Module):
    """up ×2 -> add shortcut(skip) -> ResBlock(C_in -> C_out) -> ResBlock(C_out -> C_out).

    Args:
        in_channels (int): channels of the low-resolution decoder feature (kept by the upsampling).
        skip_channels (int): channels of the encoder skip feature.
        out_channels (int): output channels.
        kernel_size (int): ResBlock kernel size (`decoder_kernel_size`). Default: 3.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.shortcut = conv_abn(skip_channels, in_channels, 3)
        self.blocks = nn.Sequential(ResBlock(in_channels, out_channels, kernel_size),
                                    ResBlock(out_channels, out_channels, kernel_size))

    def forward(self, x: torch.Tensor, skip: torch.Tensor, pair: nn.Module, state: Any) -> torch.Tensor:
        """(N, C_in, h, w), skip (N, C_skip, 2h, 2w) -> (N, C_out, 2h, 2w)."""
        return self.blocks(pair.up(x, state) + self.shortcut(skip))


class A2UDecoder(nn.Module):
    """Decoder stages dec4..dec1 and the prediction head.

    Args:
        in_channels (int): channels of the network input, the skip of the last stage. Default: 4.
        kernel_size (int): ResBlock kernel size. Default: 3.
        channels (Sequence[int]): the encoder's (c0, c1, c2, c3), (64, 64, 128, 256) at the paper's width; the
            last stage outputs c0 / 2 channels. Default: (64, 64, 128, 256).
    """

    def __init__(self, in_channels: int = 4, kernel_size: int = 3,
                 channels: Sequence[int] = (64, 64, 128, 256)) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        head = max(8, c0 // 2)
        self.stage4 = DecoderStage(c3, c2, c2, kernel_size)  # H/16 -> H/8, skip l2
        self.stage3 = DecoderStage(c2, c1, c1, kernel_size)  # H/8 -> H/4, skip l1
        self.stage2 = DecoderStage(c1, c0, c0, kernel_size)  # H/4 -> H/2, skip l0p
        self.stage1 = DecoderStage(c0, in_channels, head, kernel_size)  # H/2 -> H, skip = input
        self.pred = nn.Sequential(conv_abn(head, 1, 3), nn.Conv2d(1, 1, 3, padding=1, bias=False))

    def forward(self, context: torch.Tensor, features: EncoderFeatures, image: torch.Tensor,
                pairs: Sequence[nn.Module]) -> torch.Tensor:
        """context (N, 256, H/16, W/16), encoder features, input (N, C_in, H, W) -> raw alpha (N, 1, H, W)."""
        states = features.states
        x = self.stage4(context, features.l2, pairs[3], states[3])
        x = self.stage3(x, features.l1, pairs[2], states[2])
        x = self.stage2(x, features.l0p, pairs[1], states[1])
        x = self.stage1(x, image, pairs[0], states[0])
        return self.pred(x)
