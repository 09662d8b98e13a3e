"""OpenMMLab integration helpers: an mmdet mask head that takes any registered upsampler, synthetic data and
a few-iteration training loop for the configs in `configs/openmmlab/` (needs full mmcv + mmseg + mmdet).

Importing this package imports nothing heavy; the submodules import mmdet / mmseg where they need them.
"""
