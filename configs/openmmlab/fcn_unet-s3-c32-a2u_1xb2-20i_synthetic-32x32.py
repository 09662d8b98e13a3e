"""mmseg 1.2.2: the bilinear UNet twin with A2U as every decoder upsampler, a config-only swap.

mmseg's UpConvBlock calls `build_upsample_layer(upsample_cfg, in_channels=C, out_channels=C // 2,
with_cp=..., norm_cfg=..., act_cfg=...)` and then `upsample(x)`: A2U runs self-guided on the decoder feature.
`custom_imports` imports this project's `models` package, which registers 'A2U' in MMEngine's root MODELS,
so mmseg finds it from its own scope.
"""
_base_ = './fcn_unet-s3-c32-bilinear_1xb2-20i_synthetic-32x32.py'

custom_imports = dict(imports=['models'], allow_failed_imports=False)

model = dict(backbone=dict(upsample_cfg=dict(_delete_=True, type='A2U', scale_factor=2)))
