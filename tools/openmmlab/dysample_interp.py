"""`DySampleInterpConv`: mmseg's `InterpConv` with DySample in place of its bilinear interpolation.

mmseg's UNet builds each decoder upsampler as

    build_upsample_layer(upsample_cfg, in_channels=C, out_channels=C // 2, with_cp=..., norm_cfg=..., act_cfg=...)

and calls it on the decoder feature alone. `DySample` (`models.ops.dysample`, ICCV 2023) upsamples without a
guide but keeps its channels, so it cannot take that contract by itself. This layer is `InterpConv`'s structure
(×s upsampling, then a 1×1 `ConvModule` from C to `out_channels` with the given norm and activation) with
DySample as the upsampling: with the offset conv at zero it is exactly `InterpConv` (bilinear, align_corners
False, then the same conv), so the swap changes only how the points are sampled. FADE and SAPA need the
encoder feature as a guide, which the UNet's upsampler call does not pass; DySample is the successor that fits.

Importing this module registers 'DySampleInterpConv' in MMEngine's root MODELS (mmcv's `build_upsample_layer`
finds it from any scope); it needs mmcv (-lite is enough), not mmseg.

Initialisation: DySample's own (offset weights N(0, 0.001²), so it starts as bilinear upsampling) and
ConvModule's. A parent that re-initialises every Conv2d through an `init_cfg` (e.g. a Kaiming rule over a whole
backbone) reaches the offset conv too; `init_weights()` of this layer restores DySample's.
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS
from torch import nn
from torch.utils import checkpoint as cp

from models.ops.dysample import DySample


@MODELS.register_module()
class DySampleInterpConv(nn.Module):
    """DySample ×s on the C input channels, then a 1×1 ConvModule C -> `out_channels` (InterpConv's order).

    Args:
        in_channels (int): C, divisible by `up_group` (and by s² for style 'pl').
        out_channels (int, optional): channels after the 1×1 conv. Default: None (= in_channels).
        scale_factor (int): s. Default: 2.
        style (str): DySample's 'lp' or 'pl'. Default: 'lp'.
        up_group (int): DySample's channel groups. Default: 4.
        dyscope (bool): DySample+ (dynamic scope). Default: False.
        with_cp (bool): gradient checkpointing of the whole layer while training. Default: False.
        conv_cfg, norm_cfg, act_cfg (dict, optional): of the 1×1 ConvModule (mmseg's UNet passes the last two).
            Defaults: None, BN, ReLU (InterpConv's).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, scale_factor: int = 2, style: str = 'lp',
                 up_group: int = 4, dyscope: bool = False, with_cp: bool = False, conv_cfg: dict | None = None,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.with_cp = with_cp
        self.dysample = DySample(in_channels, scale_factor=scale_factor, style=style, up_group=up_group,
                                 dyscope=dyscope)
        self.conv = ConvModule(in_channels, out_channels, 1, conv_cfg=conv_cfg,
                               norm_cfg=dict(type='BN') if norm_cfg is None else norm_cfg,
                               act_cfg=dict(type='ReLU') if act_cfg is None else act_cfg)

    def init_weights(self) -> None:
        """DySample's official initialisation (it starts as bilinear upsampling); the conv keeps its own."""
        self.dysample.init_weights()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.dysample(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w -> N×out_channels×sh×sw."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)
