"""mmseg 1.2.2 UNet + FCNHead with A2U as its decoder upsampler, built from `configs/openmmlab/` (full stack)."""
from __future__ import annotations

import math

import pytest
import torch

from tests.test_openmmlab.openmmlab_stack import CONFIG_DIR, requires_openmmlab

pytestmark = [pytest.mark.openmmlab, requires_openmmlab]

A2U_CONFIG = CONFIG_DIR / 'fcn_unet-s3-c32-a2u_1xb2-20i_synthetic-32x32.py'
BILINEAR_CONFIG = CONFIG_DIR / 'fcn_unet-s3-c32-bilinear_1xb2-20i_synthetic-32x32.py'


def _upsamplers(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [block.upsample for block in model.backbone.decoder]


def test_config_builds_a2u_into_every_unet_decoder_stage() -> None:
    from mmengine.registry import MODELS

    from tools.openmmlab.train_synthetic import build_model, load_config

    model = build_model(load_config(A2U_CONFIG))
    a2u_class = MODELS.get('A2U')
    assert [type(up) for up in _upsamplers(model)] == [a2u_class, a2u_class]
    bilinear = build_model(load_config(BILINEAR_CONFIG))
    assert [type(up).__name__ for up in _upsamplers(bilinear)] == ['InterpConv', 'InterpConv']


def test_forward_backward_reaches_a2u_parameters() -> None:
    from tools.openmmlab.synthetic_data import segmentation_batch
    from tools.openmmlab.train_synthetic import build_model, load_config

    model = build_model(load_config(A2U_CONFIG))
    batch = model.data_preprocessor(segmentation_batch(2, 32, torch.Generator().manual_seed(1)), True)
    losses = model(**batch, mode='loss')
    total = sum(value for name, value in losses.items() if 'loss' in name)
    total.backward()
    grads = [p.grad for up in _upsamplers(model) for p in up.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    logits = model(batch['inputs'], batch['data_samples'], mode='tensor')
    assert logits.shape == (2, 2, 32, 32)


@pytest.mark.parametrize('config', [A2U_CONFIG, BILINEAR_CONFIG], ids=['a2u', 'bilinear'])
def test_few_iterations_on_synthetic_data_lower_the_loss(config) -> None:
    from tools.openmmlab.train_synthetic import build_model, load_config, train_steps

    cfg = load_config(config)
    model = build_model(cfg)
    before = {name: p.detach().clone() for name, p in model.backbone.decoder.named_parameters()
              if '.upsample.' in f'.{name}'}
    run = train_steps(model, cfg, iterations=12)
    totals = [step['loss'] for step in run.losses]
    assert all(math.isfinite(value) for value in totals)
    assert sum(totals[-3:]) / 3 < sum(totals[:3]) / 3, totals
    after = dict(model.backbone.decoder.named_parameters())
    assert before and any(not torch.equal(before[name], after[name]) for name in before)
