"""A2U through OpenMMLab's config and registry machinery; runs with mmcv-lite (no mmseg / mmdet needed).

Covers: `custom_imports` in a config registers 'A2U'; the bilinear→A2U swap is a config-only change; A2U builds
with the exact keywords mmseg's UNet and the mmdet mask head pass to `build_upsample_layer`; unknown keys and
types fail with messages that name them.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_upsample_layer
from mmengine.config import Config

from tests.test_openmmlab.openmmlab_stack import CONFIG_DIR

REPO_ROOT = CONFIG_DIR.parents[1]
SEG_A2U = CONFIG_DIR / 'fcn_unet-s3-c32-a2u_1xb2-20i_synthetic-32x32.py'
SEG_BILINEAR = CONFIG_DIR / 'fcn_unet-s3-c32-bilinear_1xb2-20i_synthetic-32x32.py'
DET_A2U = CONFIG_DIR / 'mask-rcnn_r18-c8_fpn-c32-a2u-mask_1xb2-20i_synthetic-64x64.py'
DET_BILINEAR = CONFIG_DIR / 'mask-rcnn_r18-c8_fpn-c32-bilinear-mask_1xb2-20i_synthetic-64x64.py'
#: The keywords mmseg 1.2.2's UpConvBlock passes to every upsampler it builds (besides in/out_channels).
UNET_EXTRA_KWARGS = dict(with_cp=False, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'))


def _parse(path) -> Config:
    """Parse a config without importing its custom modules (the mmdet head needs mmdet)."""
    return Config.fromfile(str(path), import_custom_modules=False)


def _without(cfg: dict, *keys: str) -> dict:
    """A plain-dict copy of `cfg` with the nested key path `keys` removed."""
    out = Config(cfg).to_dict()
    node = out
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return out


def test_custom_imports_in_config_registers_a2u_in_a_fresh_interpreter() -> None:
    script = (
        "from mmengine.registry import MODELS\n"
        "assert MODELS.get('A2U') is None, 'A2U registered before the config was read'\n"
        "from mmengine.config import Config\n"
        f"cfg = Config.fromfile({str(SEG_A2U)!r})\n"
        "assert cfg.custom_imports.imports == ['models']\n"
        "assert MODELS.get('A2U') is not None and MODELS.get('A2D') is not None\n"
        "print('registered', MODELS.get('A2U').__module__)\n")
    done = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'registered models.' in done.stdout


@pytest.mark.parametrize('a2u_path, bilinear_path, keys', [
    (SEG_A2U, SEG_BILINEAR, ('model', 'backbone', 'upsample_cfg')),
    (DET_A2U, DET_BILINEAR, ('model', 'roi_head', 'mask_head', 'upsample_cfg')),
], ids=['mmseg-unet', 'mmdet-mask-head'])
def test_bilinear_to_a2u_is_a_config_only_swap(a2u_path, bilinear_path, keys) -> None:
    a2u, bilinear = _parse(a2u_path), _parse(bilinear_path)
    node = a2u
    for key in keys:
        node = node[key]
    assert node.to_dict() == dict(type='A2U', scale_factor=2)
    a2u_rest = _without(a2u._cfg_dict, *keys)
    bilinear_rest = _without(bilinear._cfg_dict, *keys)
    a2u_rest.pop('custom_imports')
    bilinear_rest.pop('custom_imports', None)
    assert a2u_rest == bilinear_rest


def test_unet_upsample_cfg_builds_a2u_with_mmseg_keywords() -> None:
    import models  # noqa: F401  (registers A2U)
    from models.registry import MODELS

    cfg = _parse(SEG_A2U).model.backbone.upsample_cfg
    layer = build_upsample_layer(cfg, in_channels=64, out_channels=32, **UNET_EXTRA_KWARGS)
    assert isinstance(layer, MODELS.get('A2U'))
    x = torch.randn(2, 64, 8, 8)
    assert layer(x).shape == (2, 32, 16, 16)


def test_mask_head_upsample_cfg_builds_a2u_with_channel_preserving_keywords() -> None:
    import models  # noqa: F401

    cfg = dict(_parse(DET_A2U).model.roi_head.mask_head.upsample_cfg)
    scale = cfg.pop('scale_factor')
    layer = build_upsample_layer(cfg, in_channels=32, out_channels=32, scale_factor=scale)
    rois = torch.randn(3, 32, 14, 14)
    assert layer(rois).shape == (3, 32, 28, 28)


def test_mmcv_bilinear_twin_matches_interpolate_and_a2u_output_grid() -> None:
    import models  # noqa: F401

    x = torch.randn(2, 32, 7, 9)
    bilinear = build_upsample_layer(dict(type='bilinear', scale_factor=2, align_corners=False))
    expected = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
    torch.testing.assert_close(bilinear(x), expected)
    a2u = build_upsample_layer(dict(type='A2U', in_channels=32, scale_factor=2))
    assert a2u(x).shape == expected.shape


def test_unknown_keyword_names_the_keyword() -> None:
    import models  # noqa: F401

    with pytest.raises(TypeError, match='upsample_kernal'):
        build_upsample_layer(dict(type='A2U', in_channels=16, scale_factor=2, upsample_kernal=3))


def test_unknown_type_names_the_type() -> None:
    import models  # noqa: F401

    with pytest.raises(KeyError):  # mmcv's own message prints None, not the name
        build_upsample_layer(dict(type='A2UU', in_channels=16))
