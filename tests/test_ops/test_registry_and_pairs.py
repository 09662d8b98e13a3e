"""Every operator builds from a config dict; every pair builds by name and round-trips shapes."""
from __future__ import annotations

import pytest
import torch
from mmcv.cnn import build_upsample_layer

from models.ops import (ABLATION_PAIR_NAMES, A2D, A2U, PAIR_NAMES, A2UKernelGenerator, build_pair,
                        count_parameters)
from models.ops.carafe import CARAFETorch
from models.ops.kernels import a2u_upsample
from models.registry import MODELS

UPSAMPLER_CFGS = [dict(type="A2U", in_channels=32), dict(type="A2U", in_channels=32, out_channels=16),
                  dict(type="CARAFETorch", channels=32), dict(type="DeconvUp", in_channels=32),
                  dict(type="DepthToSpace"), dict(type="bilinear", scale_factor=2), dict(type="nearest",
                                                                                        scale_factor=2)]
DOWNSAMPLER_CFGS = [dict(type="A2D", in_channels=32), dict(type="AvgPoolDown"), dict(type="MaxPoolDown"),
                    dict(type="StridedConvDown", in_channels=32), dict(type="SpaceToDepth"),
                    dict(type="IndexNetDown", in_channels=32, block_type="holistic"),
                    dict(type="IndexNetDown", in_channels=32, block_type="o2o", use_nonlinear=False)]
EXPECTED_PAIR_PARAMS_C64 = {"nearest": 0, "bilinear": 0, "deconv": 73984, "pixelshuffle": 0, "maxunpool": 0,
                            "carafe": 61860, "indexnet": 279040, "a2u": 5066, "a2u-unshared": 13256}


@pytest.mark.parametrize("cfg", UPSAMPLER_CFGS, ids=lambda c: c["type"])
def test_upsamplers_build_via_mmcv(cfg):
    layer = build_upsample_layer(cfg)
    out = layer(torch.randn(2, 32, 4, 6))
    assert out.shape[-2:] == (8, 12)
    assert isinstance(MODELS.build(dict(cfg)), torch.nn.Module)


@pytest.mark.parametrize("cfg", DOWNSAMPLER_CFGS, ids=lambda c: c["type"])
def test_downsamplers_build_via_registry(cfg):
    assert MODELS.build(dict(cfg))(torch.randn(2, 32, 8, 6)).shape[-2:] == (4, 3)


def test_stateful_modules():
    x = torch.randn(1, 32, 8, 8)
    low, kernels = MODELS.build(dict(type="A2D", in_channels=32)).forward_with_state(x)
    a2u = build_upsample_layer(dict(type="A2U", in_channels=32, scale_factor=2))
    torch.testing.assert_close(a2u(low, kernels=kernels), a2u_upsample(low, kernels, 3))
    assert a2u(low, guide=x).shape == x.shape
    low, idx = MODELS.build(dict(type="MaxPoolDown")).forward_with_state(x)
    assert torch.equal(MODELS.build(dict(type="MaxUnpoolUp"))(low, idx).amax(dim=(2, 3)), x.amax(dim=(2, 3)))
    low, index = MODELS.build(dict(type="IndexNetDown", in_channels=32)).forward_with_state(x)
    assert MODELS.build(dict(type="IndexNetUp"))(low, index).shape == x.shape


def test_a2u_keywords_from_mmseg_and_errors():
    layer = build_upsample_layer(dict(type="A2U", in_channels=32, out_channels=16, with_cp=True,
                                      norm_cfg=dict(type="BN"), act_cfg=dict(type="ReLU")))
    x = torch.randn(2, 32, 4, 4, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match="scale_factor"):
        A2U(32, scale_factor=4)
    with pytest.raises(TypeError, match="bogus"):
        build_upsample_layer(dict(type="A2U", in_channels=32, bogus=1))


@pytest.mark.parametrize("name", PAIR_NAMES)
def test_pair_round_trip_and_parameter_count(name):
    pair = build_pair(name, 64)
    assert count_parameters(pair) == EXPECTED_PAIR_PARAMS_C64[name]
    x = torch.randn(2, 64, 8, 8)
    low, state = pair.down(x)
    assert low.shape == (2, 64 * pair.down_channel_factor, 4, 4)
    out = pair.up(torch.randn(2, 64, 4, 4, requires_grad=True), state)
    assert out.shape == (2, 64 // pair.up_channel_divisor, 8, 8)
    out.sum().backward()


def test_pair_keywords():
    x = torch.randn(1, 32, 4, 4)
    low, _ = build_pair("bilinear", 32, down="maxpool").down(x)
    torch.testing.assert_close(low, torch.nn.functional.max_pool2d(x, 2))
    low, _ = build_pair("nearest", 32, down="maxpool").down(x)
    torch.testing.assert_close(low, torch.nn.functional.max_pool2d(x, 2))
    pair = build_pair("a2u", 32, up_kernel=5, encoder_kernel=4, rank=2, up_group=2)
    low, kernels = pair.down(x)
    assert kernels.shape == (1, 50, 4, 4) and pair.up(low, kernels).shape == x.shape
    with pytest.raises(ValueError, match="unknown keyword"):
        build_pair("a2u", 32, kernel=3)
    with pytest.raises(ValueError, match=r"\['up_kernel', 'up_group', 'encoder_kernel', 'rank', 'shared'"):
        build_pair("a2u", 32, up_kernel_size=3)      # the pre-mmcv-naming keyword names the accepted ones
    with pytest.raises(ValueError, match="down must be one of"):
        build_pair("bilinear", 32, down="conv")
    with pytest.raises(ValueError, match="unknown operator pair"):
        build_pair("bicubic", 32)


@pytest.mark.parametrize("cls", [A2U, A2D, A2UKernelGenerator, CARAFETorch])
def test_hyper_parameter_names_follow_carafe_pack_and_live_on_self(cls):
    module = cls(32, up_kernel=5, up_group=2, encoder_kernel=3)
    assert (module.up_kernel, module.up_group, module.encoder_kernel) == (5, 2, 3)


#: Ablation pairs at C=64 (pairs.py's table): pooled/self-guided ones have no P_down (42C+38); d2 has two u, v
#: filters and two columns of P; s1/s5 change P's (2s)² outputs.
EXPECTED_ABLATION_PARAMS_C64 = {"a2u-avgpool": 2726, "a2u-maxpool": 2726, "a2u-self": 2726, "a2u-d2": 9876,
                                "a2u-s1": 906, "a2u-s5": 13386, "a2u-softmax": 5066,
                                "a2u-sumnorm": 5066}


@pytest.mark.parametrize("name", ABLATION_PAIR_NAMES)
def test_ablation_pairs_round_trip_and_parameter_count(name):
    pair = build_pair(name, 64)
    assert name not in PAIR_NAMES and count_parameters(pair) == EXPECTED_ABLATION_PARAMS_C64[name]
    x = torch.randn(2, 64, 8, 8, requires_grad=True)
    low, state = pair.down(x)
    assert low.shape == (2, 64, 4, 4)
    out = pair.up(low, state)
    assert out.shape == (2, 64, 8, 8)
    out.square().sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in pair.parameters()), name


def test_ablation_pairs_change_one_thing_against_a2u():
    x = torch.randn(1, 64, 8, 8)
    assert build_pair("a2u-d2", 64).downsampler.rank == 2
    assert build_pair("a2u-s1", 64).up_kernel == 1 and build_pair("a2u-s5", 64).downsampler.down_kernel == 10
    assert build_pair("a2u-s5", 64, up_kernel=3).up_kernel == 3          # explicit keywords still win
    torch.testing.assert_close(build_pair("a2u-maxpool", 64).down(x)[0], torch.nn.functional.max_pool2d(x, 2))
    torch.testing.assert_close(build_pair("a2u-avgpool", 64).down(x)[0], torch.nn.functional.avg_pool2d(x, 2))
    low, state = build_pair("a2u-avgpool", 64).down(x)
    assert state.shape == (1, 9, 8, 8)                                   # kernels from the encoder feature
    assert build_pair("a2u-self", 64).down(x)[1] is None                 # self-guided: nothing travels
    kernels = build_pair("a2u-s1", 64).down(x)[1]
    assert kernels.shape == (1, 1, 8, 8) and bool(((kernels > 0) & (kernels < 1)).all())   # sigmoid gate


def test_ablation_pairs_run_in_the_toy_and_matting_networks():
    from models.matting.network import A2UMattingNet
    from models.toy import ToyReconstructionNet

    for name in ("a2u-self", "a2u-maxpool"):
        toy = ToyReconstructionNet(name)
        assert toy(torch.rand(2, 1, 32, 32), mode="tensor").shape == (2, 1, 32, 32)
    assert A2UMattingNet(upsampler="a2u-s1").eval()(torch.randn(1, 4, 32, 32)).shape == (1, 1, 32, 32)
