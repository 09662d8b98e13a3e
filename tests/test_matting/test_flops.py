"""Tests of models/matting/flops.py against hand-counted conv MACs of spec 4.1 and the spec 2.5 formula."""
from __future__ import annotations

import pytest

from models.matting import A2UMattingNet
from models.matting.encoder import PAIR_CHANNELS
from models.matting.flops import a2u_extra_macs_spec, count_flops

from tests.test_matting.standins import STANDIN, MaxPoolBilinearStandIn  # noqa: E402,F401


def _conv(c_in: int, c_out: int, k: int, side: int, groups: int = 1) -> int:
    return c_out * (c_in // groups) * k * k * side * side


def baseline_conv_macs(size: int, aspp: bool = True) -> int:
    """Conv MACs of the baseline, layer by layer from the spec 4.1 table (square input `size`)."""
    s1, s2, s4, s8, s16 = size, size // 2, size // 4, size // 8, size // 16
    encoder = (_conv(4, 64, 7, s1) + 6 * _conv(64, 64, 3, s4)
               + _conv(64, 128, 3, s4) + _conv(128, 128, 3, s8) + _conv(64, 128, 1, s8) + 6 * _conv(128, 128, 3, s8)
               + _conv(128, 256, 3, s8) + _conv(256, 256, 3, s16) + _conv(128, 256, 1, s16)
               + 6 * _conv(256, 256, 3, s16))
    aspp_macs = (_conv(256, 256, 1, s16) + 3 * (_conv(256, 256, 3, s16, groups=256) + _conv(256, 256, 1, s16))
                 + _conv(256, 256, 1, 1) + _conv(1280, 256, 1, s16))
    decoder = (_conv(128, 256, 3, s8) + _conv(256, 128, 3, s8) + _conv(128, 128, 3, s8) + _conv(256, 128, 1, s8)
               + 2 * _conv(128, 128, 3, s8)
               + _conv(64, 128, 3, s4) + _conv(128, 64, 3, s4) + _conv(64, 64, 3, s4) + _conv(128, 64, 1, s4)
               + 2 * _conv(64, 64, 3, s4)
               + 5 * _conv(64, 64, 3, s2)
               + _conv(4, 64, 3, s1) + _conv(64, 32, 3, s1) + _conv(32, 32, 3, s1) + _conv(64, 32, 1, s1)
               + 2 * _conv(32, 32, 3, s1)
               + _conv(32, 1, 3, s1) + _conv(1, 1, 3, s1))
    return encoder + (aspp_macs if aspp else 0) + decoder


def test_hand_count_reproduces_spec_number_at_512():
    assert round(baseline_conv_macs(512) / 1e9, 2) == 52.56  # spec 4.2, conv-only GMAC at 512²


def test_baseline_conv_macs_match_hand_count_and_params():
    net = A2UMattingNet(upsampler=STANDIN).train()
    result = count_flops(net, size=(64, 32))
    assert net.training  # the mode is restored after the eval-mode trace
    assert result["conv_macs"] == baseline_conv_macs(64) // 2 + _conv(256, 256, 1, 1) // 2  # pooled branch: 1×1
    assert result["macs"] == result["conv_macs"]  # no other MAC operator in the baseline
    assert result["params"] == 8_049_003
    assert result["flops"] > result["macs"]  # BN and interpolation are counted on top
    assert result["input_shape"] == [1, 4, 64, 32]


def test_a2u_overhead_matches_spec_formula():
    extra = count_flops(A2UMattingNet(upsampler="a2u", aspp=False), size=32)["macs"] - baseline_conv_macs(32, False)
    # Spec 2.5 leaves out the generators' 1×1 convs on pooled features: per pair 2·36·C (P) + 2·36·C (u, v).
    pooled_generator_convs = 144 * sum(PAIR_CHANNELS)
    assert extra == pytest.approx(a2u_extra_macs_spec(32) + pooled_generator_convs, rel=0.01)
    assert a2u_extra_macs_spec(512) == 880_517_120  # spec 2.5: +0.881 GMAC at 512²
