"""mmseg 1.2.2: the bilinear UNet twin with DySample (ICCV 2023) in every decoder upsampler, a config-only swap.

mmseg's UpConvBlock calls `build_upsample_layer(upsample_cfg, in_channels=C, out_channels=C // 2,
with_cp=..., norm_cfg=..., act_cfg=...)` and then `upsample(x)`. The baseline's `InterpConv` is bilinear ×2 then
a 1×1 ConvModule; `DySampleInterpConv` (tools/openmmlab/dysample_interp.py) is the same with DySample ('lp',
4 groups) as the ×2 step, and equals InterpConv while DySample's offset conv is zero. `custom_imports` imports
this project's `models` (DySample) and the layer's module, which registers 'DySampleInterpConv' in MMEngine's
root MODELS, so mmseg finds it from its own scope.
"""
_base_ = './fcn_unet-s3-c32-bilinear_1xb2-20i_synthetic-32x32.py'

custom_imports = dict(imports=['models', 'tools.openmmlab.dysample_interp'], allow_failed_imports=False)

model = dict(backbone=dict(upsample_cfg=dict(_delete_=True, type='DySampleInterpConv', scale_factor=2)))
