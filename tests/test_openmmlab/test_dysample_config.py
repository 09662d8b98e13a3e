"""DySample (A2U's successor, ICCV 2023) in mmseg's UNet by a config-only swap.

The first tests need mmcv-lite only (no mmseg): the config is a swap of `upsample_cfg` alone, its
`custom_imports` register the layer in a fresh interpreter, and the layer takes mmseg's UpConvBlock keywords
and equals InterpConv (bilinear, then the 1×1 ConvModule) while DySample's offsets are zero. The last tests
build and train the whole UNet and skip without the full OpenMMLab stack, as the A2U twin's do.
"""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_upsample_layer
from mmengine.config import Config

from tests.test_openmmlab.openmmlab_stack import CONFIG_DIR, requires_openmmlab

REPO_ROOT = CONFIG_DIR.parents[1]
SEG_DYSAMPLE = CONFIG_DIR / 'fcn_unet-s3-c32-dysample_1xb2-20i_synthetic-32x32.py'
SEG_BILINEAR = CONFIG_DIR / 'fcn_unet-s3-c32-bilinear_1xb2-20i_synthetic-32x32.py'
#: The keywords mmseg 1.2.2's UpConvBlock passes to every upsampler it builds (besides in/out_channels).
UNET_EXTRA_KWARGS = dict(with_cp=False, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))


def _parse(path) -> Config:
    return Config.fromfile(str(path), import_custom_modules=False)


def test_bilinear_to_dysample_is_a_config_only_swap() -> None:
    dysample, bilinear = _parse(SEG_DYSAMPLE), _parse(SEG_BILINEAR)
    assert dysample.model.backbone.upsample_cfg.to_dict() == dict(type='DySampleInterpConv', scale_factor=2)
    rest = dysample.to_dict()
    base = bilinear.to_dict()
    for cfg in (rest, base):
        del cfg['model']['backbone']['upsample_cfg']
        cfg.pop('custom_imports', None)
    assert rest == base


def test_custom_imports_register_the_layer_in_a_fresh_interpreter() -> None:
    script = (
        "from mmengine.registry import MODELS\n"
        "assert MODELS.get('DySampleInterpConv') is None\n"
        "from mmengine.config import Config\n"
        f"cfg = Config.fromfile({str(SEG_DYSAMPLE)!r})\n"
        "assert MODELS.get('DySampleInterpConv') is not None and MODELS.get('DySample') is not None\n"
        "print('registered', MODELS.get('DySampleInterpConv').__module__)\n")
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'registered tools.openmmlab.dysample_interp' in done.stdout


def test_unet_upsample_cfg_builds_with_mmseg_keywords_and_is_interpconv_at_zero_offsets() -> None:
    from tools.openmmlab.dysample_interp import DySampleInterpConv

    torch.manual_seed(0)
    cfg = _parse(SEG_DYSAMPLE).model.backbone.upsample_cfg
    layer = build_upsample_layer(cfg, in_channels=64, out_channels=32, **UNET_EXTRA_KWARGS).eval()
    assert isinstance(layer, DySampleInterpConv)
    x = torch.randn(2, 64, 8, 8)
    assert layer(x).shape == (2, 32, 16, 16)
    # DySample's own initialisation: tiny offsets, so it starts as bilinear upsampling
    assert layer.dysample.offset.weight.std() < 0.01
    with torch.no_grad():
        layer.dysample.offset.weight.zero_()
        interp = layer.conv(F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False))
        torch.testing.assert_close(layer(x), interp, atol=1e-5, rtol=1e-5)


def test_init_weights_restores_dysample_init_and_checkpointing_keeps_gradients() -> None:
    from tools.openmmlab.dysample_interp import DySampleInterpConv

    torch.manual_seed(0)
    layer = DySampleInterpConv(32, 16, dyscope=True, with_cp=True, norm_cfg=dict(type='BN'),
                               act_cfg=dict(type='ReLU'))
    torch.nn.init.kaiming_normal_(layer.dysample.offset.weight)  # what a backbone-wide Kaiming init_cfg does
    layer.init_weights()
    assert layer.dysample.offset.weight.std() < 0.01 and layer.dysample.scope.weight.abs().sum() == 0
    x = torch.randn(2, 32, 6, 6, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad is not None and layer.dysample.offset.weight.grad.abs().sum() > 0


@pytest.mark.openmmlab
@requires_openmmlab
def test_config_builds_dysample_into_every_unet_decoder_stage() -> None:
    from tools.openmmlab.dysample_interp import DySampleInterpConv
    from tools.openmmlab.train_synthetic import build_model, load_config

    model = build_model(load_config(SEG_DYSAMPLE))
    assert [type(block.upsample) for block in model.backbone.decoder] == [DySampleInterpConv, DySampleInterpConv]


@pytest.mark.openmmlab
@requires_openmmlab
def test_few_iterations_on_synthetic_data_lower_the_loss() -> None:
    from tools.openmmlab.train_synthetic import build_model, load_config, train_steps

    cfg = load_config(SEG_DYSAMPLE)
    model = build_model(cfg)
    before = {name: p.detach().clone() for name, p in model.backbone.decoder.named_parameters()
              if '.dysample.' in f'.{name}'}
    run = train_steps(model, cfg, iterations=12)
    totals = [step['loss'] for step in run.losses]
    assert all(math.isfinite(value) for value in totals)
    assert sum(totals[-3:]) / 3 < sum(totals[:3]) / 3, totals
    after = dict(model.backbone.decoder.named_parameters())
    assert before and any(not torch.equal(before[name], after[name]) for name in before)
