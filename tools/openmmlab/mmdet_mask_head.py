"""`AnyUpsamplerFCNMaskHead`: mmdet 3.3.0's FCNMaskHead that accepts any upsampler registered in MMEngine.

FCNMaskHead raises ValueError unless `upsample_cfg['type']` is one of its four built-in names (deconv, nearest,
bilinear, carafe), because it builds each with a hand-written set of keywords. This subclass keeps that path
for those names and, for any other registered type (e.g. 'A2U'), builds the layer with the keyword contract
that mmseg's UNet also uses:

    build_upsample_layer(upsample_cfg, in_channels=C, out_channels=C, scale_factor=s)

where C is the channel count entering the upsampler (`conv_out_channels`, or `in_channels` with no convs).
The layer is called self-guided, `upsample(x)`, on the (R, C, h, w) RoI feature and must return
(R, C, s·h, s·w). Importing this module registers the class in mmdet's MODELS (use it via `custom_imports`).
"""
from __future__ import annotations

from typing import Any

from mmcv.cnn import build_upsample_layer
from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from mmengine.registry import MODELS as ROOT_MODELS

#: The upsampler names FCNMaskHead builds itself (None means no upsampling).
MMDET_BUILTIN_UPSAMPLERS = (None, 'deconv', 'nearest', 'bilinear', 'carafe')


def _check_registered(layer_type: Any) -> None:
    """Raise a KeyError naming `layer_type` when build_upsample_layer would not find it (its own message
    prints None instead of the name)."""
    if not isinstance(layer_type, str):
        return
    with ROOT_MODELS.switch_scope_and_registry(None) as registry:
        if registry.get(layer_type) is None:
            raise KeyError(f"AnyUpsamplerFCNMaskHead: upsample_cfg type {layer_type!r} is not registered in "
                           f"scope {registry.scope!r} or MMEngine's root MODELS; import the module that "
                           "registers it with custom_imports")


@MODELS.register_module()
class AnyUpsamplerFCNMaskHead(FCNMaskHead):
    """FCNMaskHead whose ×s upsampler may be any type in MMEngine's root MODELS.

    Args:
        upsample_cfg (dict): `type` plus the upsampler's own keywords; `scale_factor` (int) is popped and
            passed on, as FCNMaskHead does. Default: ``dict(type='deconv', scale_factor=2)``.
        **kwargs: every other FCNMaskHead argument, unchanged.
    """

    def __init__(self, upsample_cfg: dict | None = None, **kwargs: Any) -> None:
        cfg = dict(type='deconv', scale_factor=2) if upsample_cfg is None else dict(upsample_cfg)
        if 'type' not in cfg:
            raise KeyError(f"AnyUpsamplerFCNMaskHead: upsample_cfg needs a 'type', got {cfg}")
        if cfg['type'] in MMDET_BUILTIN_UPSAMPLERS:
            super().__init__(upsample_cfg=cfg, **kwargs)
            return
        _check_registered(cfg['type'])
        super().__init__(upsample_cfg=dict(type=None), **kwargs)
        scale_factor = cfg.pop('scale_factor', 2)
        channels = self.conv_out_channels if self.num_convs > 0 else self.in_channels
        self.upsample_cfg = cfg
        self.upsample_method = cfg['type']
        self.scale_factor = scale_factor
        self.upsample = build_upsample_layer(
            cfg, in_channels=channels, out_channels=channels, scale_factor=scale_factor)
