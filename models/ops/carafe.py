"""CARAFE in pure PyTorch, registered as 'CARAFETorch' (mmcv's 'carafe' has no CPU kernel).

Paper: Wang et al., "CARAFE: Content-Aware ReAssembly of FEatures", ICCV 2019 (https://arxiv.org/abs/1905.02188).
Same maths as mmcv's `CARAFEPack`: channel compressor (1×1 to 64), content encoder (k_enc×k_enc conv to
(r·k_up)²·G logits), pixel shuffle, softmax over each group's k_up² entries, then reassembly. The reassembly is
`reassemble_up`, whose semantics (CARAFE-naive) are identical. Initialisation as in mmcv: compressor
Xavier-uniform, encoder N(0, 0.001), zero biases.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.kernels import reassemble_up
from models.registry import MODELS


@MODELS.register_module(name="CARAFETorch")
class CARAFETorch(nn.Module):
    """Content-aware upsampler.

    Args:
        channels (int): input channels C (C divisible by `up_group`).
        scale_factor (int): r. Default: 2.
        up_kernel (int): k_up, odd reassembly window. Default: 5.
        up_group (int): kernel groups G. Default: 1.
        encoder_kernel (int): k_enc, odd. Default: 3.
        encoder_dilation (int): dilation of the content encoder. Default: 1.
        compressed_channels (int): channels after the compressor. Default: 64.
    """

    def __init__(self, channels: int, scale_factor: int = 2, up_kernel: int = 5, up_group: int = 1,
                 encoder_kernel: int = 3, encoder_dilation: int = 1, compressed_channels: int = 64) -> None:
        super().__init__()
        if up_kernel % 2 == 0 or up_kernel < 1:
            raise ValueError(f"up_kernel must be a positive odd int, got {up_kernel}")
        if encoder_kernel % 2 == 0 or encoder_kernel < 1:
            raise ValueError(f"encoder_kernel must be a positive odd int, got {encoder_kernel}")
        if channels % up_group:
            raise ValueError(f"channels {channels} not divisible by up_group {up_group}")
        if not isinstance(scale_factor, int) or scale_factor < 1:
            raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
        self.channels, self.scale_factor, self.up_kernel, self.up_group = channels, scale_factor, up_kernel, up_group
        self.encoder_kernel, self.encoder_dilation = encoder_kernel, encoder_dilation
        self.compressed_channels = compressed_channels
        self.channel_compressor = nn.Conv2d(channels, compressed_channels, 1)
        self.content_encoder = nn.Conv2d(compressed_channels, up_kernel ** 2 * up_group * scale_factor ** 2,
                                         encoder_kernel, padding=(encoder_kernel - 1) * encoder_dilation // 2,
                                         dilation=encoder_dilation)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's `CARAFEPack` initialisation: compressor Xavier-uniform, encoder N(0, 0.001), zero biases."""
        nn.init.xavier_uniform_(self.channel_compressor.weight)
        nn.init.zeros_(self.channel_compressor.bias)
        nn.init.normal_(self.content_encoder.weight, std=0.001)
        nn.init.zeros_(self.content_encoder.bias)

    def kernels(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w -> normalised kernels N×(G·k_up²)×rh×rw (at least float32)."""
        logits = F.pixel_shuffle(self.content_encoder(self.channel_compressor(x)), self.scale_factor)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        n, _, h, w = logits.shape
        return F.softmax(logits.view(n, self.up_group, -1, h, w), dim=2).view(n, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w -> N×C×rh×rw."""
        return reassemble_up(x, self.kernels(x), self.up_kernel, self.up_group, self.scale_factor)
