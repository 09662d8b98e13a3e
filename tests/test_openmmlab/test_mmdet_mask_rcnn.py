"""mmdet 3.3.0 Mask R-CNN whose mask head upsamples with A2U, built from `configs/openmmlab/` (full stack)."""
from __future__ import annotations

import math

import pytest
import torch

from tests.test_openmmlab.openmmlab_stack import CONFIG_DIR, requires_openmmlab

pytestmark = [pytest.mark.openmmlab, requires_openmmlab]

A2U_CONFIG = CONFIG_DIR / 'mask-rcnn_r18-c8_fpn-c32-a2u-mask_1xb2-20i_synthetic-64x64.py'
BILINEAR_CONFIG = CONFIG_DIR / 'mask-rcnn_r18-c8_fpn-c32-bilinear-mask_1xb2-20i_synthetic-64x64.py'


def test_mask_head_builds_a2u_and_bilinear_twin_matches_mmdet_head() -> None:
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    from mmengine.registry import MODELS

    from tools.openmmlab.train_synthetic import build_model, load_config

    head = build_model(load_config(A2U_CONFIG)).roi_head.mask_head
    assert type(head.upsample) is MODELS.get('A2U')
    assert head.conv_logits.in_channels == 32

    twin_cfg = load_config(BILINEAR_CONFIG)
    twin = build_model(twin_cfg).roi_head.mask_head
    plain_cfg = dict(twin_cfg.model.roi_head.mask_head, type='FCNMaskHead')
    plain = MODELS.build(plain_cfg)
    assert isinstance(twin, FCNMaskHead)
    assert repr(twin.upsample) == repr(plain.upsample)
    assert [k for k in twin.state_dict()] == [k for k in plain.state_dict()]


def test_mask_head_rejects_unknown_upsampler_by_name() -> None:
    from mmengine.registry import MODELS, init_default_scope

    import tools.openmmlab.mmdet_mask_head  # noqa: F401  (registers the head)

    init_default_scope('mmdet')
    with pytest.raises(KeyError, match='NoSuchUpsampler'):
        MODELS.build(dict(type='AnyUpsamplerFCNMaskHead', upsample_cfg=dict(type='NoSuchUpsampler')))


def test_mask_head_a2u_forward_backward_shapes() -> None:
    from tools.openmmlab.train_synthetic import build_model, load_config

    head = build_model(load_config(A2U_CONFIG)).roi_head.mask_head
    rois = torch.randn(3, 32, 14, 14, requires_grad=True)
    masks = head(rois)
    assert masks.shape == (3, 1, 28, 28)
    masks.square().mean().backward()
    assert rois.grad is not None and torch.isfinite(rois.grad).all()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.upsample.parameters())


def test_few_iterations_train_and_predict_on_synthetic_data() -> None:
    from tools.openmmlab.synthetic_data import detection_batch
    from tools.openmmlab.train_synthetic import build_model, load_config, train_steps

    cfg = load_config(A2U_CONFIG)
    model = build_model(cfg)
    before = {name: p.detach().clone() for name, p in model.roi_head.mask_head.upsample.named_parameters()}
    run = train_steps(model, cfg, iterations=10)
    for step in run.losses:
        assert all(math.isfinite(value) for value in step.values()), step
    assert 'loss_mask' in run.losses[0]
    # The mask loss is noisy over 10 steps (few positive RoIs per batch); the classifiers learn steadily.
    for name in ('loss_rpn_cls', 'loss_cls'):
        assert run.losses[-1][name] < run.losses[0][name], [step[name] for step in run.losses]
    after = dict(model.roi_head.mask_head.upsample.named_parameters())
    assert before and any(not torch.equal(before[name], after[name]) for name in before)

    model.eval()
    batch = detection_batch(1, 64, torch.Generator().manual_seed(5))
    with torch.no_grad():
        (result,) = model.test_step(batch)
    masks = result.pred_instances.masks
    assert masks.shape[-2:] == (64, 64)
