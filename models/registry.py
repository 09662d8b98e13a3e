"""Registries used by this package.

Upsamplers and downsamplers go in MMEngine's **root** `MODELS` registry, because mmcv 2.x's
`build_upsample_layer` looks `type` up there (from the current default scope upwards). Operator pairs (a
downsampler plus the upsampler that consumes its state) have their own small registry so a network swaps a
pair by one config string such as `'a2u'` or `'bilinear'`.
"""
from mmengine.registry import MODELS, Registry

OPERATOR_PAIRS = Registry("operator pair")

__all__ = ["MODELS", "OPERATOR_PAIRS"]
