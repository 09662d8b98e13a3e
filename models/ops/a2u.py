"""Registered A2U upsampler and A2D downsampler modules (MMEngine root `MODELS`, keys 'A2U' and 'A2D').

Paper: Dai, Lu, Shen, "Learning Affinity-Aware Upsampling for Deep Image Matting", CVPR 2021
(https://arxiv.org/abs/2011.14288). Three layers as in mmcv's CARAFE: `A2UKernelGenerator` (kernels),
`a2u_upsample` / `a2d_downsample` (reassembly), and these thin modules.

`A2U` can be guided three ways:
- `forward(x, kernels=K)`: given up kernels (e.g. from the paired `A2D` / generator of the encoder);
- `forward(x, guide)`: a high-resolution guide (N×guide_channels×2h×2w) through its own generator;
- `forward(x)`: self-guided. The generator's up path runs at x's own resolution (stride-1 u/v correlations,
  window i−⌊(k−1)/2⌋ … i+⌊k/2⌋), P maps to 4·s² logits per pixel, pixel shuffle gives s² kernels for each of
  the 2h×2w outputs. This is the drop-in form used by `build_upsample_layer` (mmseg/mmdet necks).
Its generator is built with `predict_down=False` (no unused P_down), so an `A2U` has 42C+38 parameters
(s=3, d=1, G=1, shared) plus the optional 1×1 projection.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from models.ops.a2u_generator import A2UKernelGenerator
from models.ops.kernels import a2d_downsample, a2u_upsample
from models.registry import MODELS


@MODELS.register_module(name="A2U")
class A2U(nn.Module):
    """Affinity-aware ×2 upsampler.

    Args:
        in_channels (int): channels of x.
        out_channels (int, optional): if different from `in_channels`, a 1×1 ConvModule (with `norm_cfg`,
            `act_cfg`) projects x before upsampling (cheaper than after; kernels do not depend on channels).
            Default: None (= in_channels).
        scale_factor (int): must be 2. Default: 2.
        up_kernel_size (int): s, odd. Default: 3.
        encode_kernel_size (int): k. Default: 6.
        rank (int): d. Default: 1.
        groups (int): G kernel groups; `out_channels` must be divisible by it. Default: 1.
        shared (bool): channel-shared u, v. Default: True.
        guide_channels (int, optional): channels of the guide feature. Default: None (= in_channels).
        norm_groups (int): GroupNorm groups of the generator. Default: 32.
        with_cp (bool): gradient checkpointing of the kernel generation and reassembly. Default: False.
        norm_cfg (dict, optional): norm of the projection (mmseg's UNet passes it to every upsampler).
        act_cfg (dict, optional): activation of the projection.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, scale_factor: int = 2,
                 up_kernel_size: int = 3, encode_kernel_size: int = 6, rank: int = 1, groups: int = 1,
                 shared: bool = True, guide_channels: int | None = None, norm_groups: int = 32,
                 with_cp: bool = False, norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        if scale_factor != 2:
            raise ValueError(f"scale_factor must be 2 for A2U, got {scale_factor}")
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.guide_channels = in_channels if guide_channels is None else guide_channels
        if self.out_channels % groups:
            raise ValueError(f"out_channels {self.out_channels} not divisible by groups {groups}")
        self.scale_factor, self.up_kernel_size, self.groups, self.with_cp = scale_factor, up_kernel_size, groups, with_cp
        self.generator = A2UKernelGenerator(self.guide_channels, up_kernel_size, encode_kernel_size, rank, groups,
                                            shared, norm_groups, predict_down=False)
        self.projection: nn.Module | None = None
        if self.out_channels != in_channels:
            from mmcv.cnn import ConvModule  # local: keeps `import models.ops.a2u` light
            self.projection = ConvModule(in_channels, self.out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def _upsample(self, x: torch.Tensor, guide: torch.Tensor | None, kernels: torch.Tensor | None) -> torch.Tensor:
        if kernels is None:
            if guide is None and self.guide_channels != self.in_channels:
                raise ValueError(f"A2U built with guide_channels={self.guide_channels} needs a guide feature")
            kernels = self.generator.up_kernels(x, stride=1) if guide is None else self.generator.up_kernels(guide)
        if self.projection is not None:
            x = self.projection(x)
        return a2u_upsample(x, kernels, self.up_kernel_size, self.groups, self.scale_factor)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None,
                kernels: torch.Tensor | None = None) -> torch.Tensor:
        """x N×in_channels×h×w (+ guide N×guide_channels×2h×2w or kernels N×(G·s²)×2h×2w) -> N×out×2h×2w."""
        if guide is not None and kernels is not None:
            raise ValueError("pass either guide or kernels to A2U, not both")
        if self.with_cp and self.training and x.requires_grad:
            return checkpoint(self._upsample, x, guide, kernels, use_reentrant=False)
        return self._upsample(x, guide, kernels)


@MODELS.register_module(name="A2D")
class A2D(nn.Module):
    """Affinity-aware ×2 downsampler; its generator also predicts the paired A2U up kernels.

    Args:
        in_channels (int): C (divisible by `norm_groups` and `groups`).
        up_kernel_size (int): s; the downsampling window is 2s. Default: 3.
        encode_kernel_size (int): k. Default: 6.
        rank (int): d. Default: 1.
        groups (int): G. Default: 1.
        shared (bool): channel-shared u, v. Default: True.
        norm_groups (int): GroupNorm groups. Default: 32.
    """

    def __init__(self, in_channels: int, up_kernel_size: int = 3, encode_kernel_size: int = 6, rank: int = 1,
                 groups: int = 1, shared: bool = True, norm_groups: int = 32) -> None:
        super().__init__()
        self.in_channels, self.groups = in_channels, groups
        self.generator = A2UKernelGenerator(in_channels, up_kernel_size, encode_kernel_size, rank, groups, shared,
                                            norm_groups)

    def forward_with_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×H×W (H, W even) -> (N×C×H/2×W/2, up kernels N×(G·s²)×H×W for the paired A2U)."""
        down_kernels, up_kernels = self.generator(x)
        return a2d_downsample(x, down_kernels, self.generator.down_kernel_size, self.groups), up_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×H×W -> N×C×H/2×W/2 (the up kernels are not returned; see `forward_with_state`)."""
        down_kernels = self.generator.down_kernels(x)
        return a2d_downsample(x, down_kernels, self.generator.down_kernel_size, self.groups)

