"""mmdet 3.3.0: the bilinear Mask R-CNN twin with A2U as the mask head's ×2 upsampler, a config-only swap.

`AnyUpsamplerFCNMaskHead` builds a non-mmdet upsampler with `build_upsample_layer(upsample_cfg,
in_channels=C, out_channels=C, scale_factor=2)` and calls it self-guided on the 14×14 RoI feature.
"""
_base_ = './mask-rcnn_r18-c8_fpn-c32-bilinear-mask_1xb2-20i_synthetic-64x64.py'

model = dict(roi_head=dict(mask_head=dict(upsample_cfg=dict(_delete_=True, type='A2U', scale_factor=2))))
