"""The reconstruction network: shapes for every registered pair, init statistics, MMEngine modes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import models  # noqa: F401
from models.ops.pairs import PAIR_NAMES
from models.registry import MODELS, OPERATOR_PAIRS
from models.toy import ToyReconstructionNet


@pytest.mark.parametrize("operator", PAIR_NAMES)
def test_every_pair_reconstructs_shape(operator):
    if operator not in OPERATOR_PAIRS.module_dict:
        pytest.skip(f"operator pair {operator!r} not registered yet")
    net = ToyReconstructionNet(operator)
    out = net(torch.rand(2, 1, 32, 32))
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()


def test_protocol_widths_and_parameter_count():
    net = MODELS.build(dict(type="ToyReconstructionNet", operator="bilinear"))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    widths = [(c.in_channels, c.out_channels) for c in convs]
    assert widths == [(1, 32), (32, 64), (64, 128), (128, 256), (256, 128), (128, 64), (64, 32), (32, 1)]
    expected = sum(i * o * 9 + o for i, o in widths) + 2 * sum(o for _, o in widths[:-1])
    assert sum(p.numel() for p in net.parameters()) == expected


def test_pixelshuffle_channels_are_adapted():
    if "pixelshuffle" not in OPERATOR_PAIRS.module_dict:
        pytest.skip("pixelshuffle pair not registered yet")
    net = ToyReconstructionNet("pixelshuffle")
    assert net.layer2[0].in_channels == 128 and net.mid[0][0].in_channels == 512
    assert net.uplayer1[0].in_channels == 32 and net.out.in_channels == 8


def test_initialisation_statistics():
    torch.manual_seed(0)
    net = ToyReconstructionNet("bilinear")
    weights = torch.cat([net.mid[0][0].weight.flatten(), net.mid[1][0].weight.flatten()]).detach()
    assert abs(float(weights.mean())) < 1e-3 and float(weights.std()) == pytest.approx(0.02, rel=0.02)
    bn = net.mid[0][1].requires_grad_(False)
    assert float(bn.weight.mean()) == pytest.approx(1.0, abs=0.01) and float(bn.bias.abs().max()) == 0.0
    assert float(net.out.bias.abs().max()) == 0.0


def test_modes():
    net = ToyReconstructionNet("bilinear", channels=(8, 16, 32), mid_channels=16)
    x = torch.rand(3, 1, 32, 32)
    loss = net(x, mode="loss")["loss"]
    torch.testing.assert_close(loss, (net(x) - x).abs().mean())
    outs = net(x, {"index": torch.tensor([5, 6, 7])}, mode="predict")
    assert [o["index"] for o in outs] == [5, 6, 7] and outs[0]["pred"].shape == (1, 32, 32)
    with pytest.raises(ValueError, match="mode must be"):
        net(x, mode="train")
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 1, 30, 30))
