"""CARAFE, IndexNet and the basic operators against independent formulations."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.ops.basic import DeconvUp, DepthToSpace, SpaceToDepth, StridedConvDown
from models.ops.carafe import CARAFETorch
from models.ops.indexnet import IndexBlock, IndexNetDown, IndexNetUp
from tests.test_ops.loop_references import upsample_loop


def test_carafe_matches_loop_reassembly():
    carafe = CARAFETorch(8, up_kernel=5, up_group=2, compressed_channels=4).double()
    with torch.no_grad():
        carafe.content_encoder.weight.normal_()
    x = torch.randn(2, 8, 3, 4, dtype=torch.float64)
    logits = F.pixel_shuffle(carafe.content_encoder(carafe.channel_compressor(x)), 2)
    kernels = logits.view(2, 2, 25, 6, 8).softmax(dim=2).view(2, 50, 6, 8)
    torch.testing.assert_close(carafe(x), upsample_loop(x, kernels, 5, 2), atol=1e-10, rtol=0)


def test_carafe_bad_arguments():
    with pytest.raises(ValueError, match="up_kernel"):
        CARAFETorch(8, up_kernel=4)
    with pytest.raises(ValueError, match="up_group"):
        CARAFETorch(6, up_group=4)


@pytest.mark.parametrize("block_type", ["holistic", "o2o", "m2o"])
def test_index_block_semantics(block_type):
    block = IndexBlock(4, block_type, use_nonlinear=False, use_context=False).double()
    x = torch.randn(2, 4, 4, 6, dtype=torch.float64)
    encoder, decoder = block(x)
    channels = 1 if block_type == "holistic" else 4
    assert encoder.shape == decoder.shape == (2, channels, 4, 6)
    torch.testing.assert_close(F.avg_pool2d(encoder, 2) * 4, torch.ones(2, channels, 2, 3, dtype=torch.float64))
    weight = block.index.weight                     # 2×2 stride-2 conv: position (a, b) of each cell
    cell = x[:, :, 0:2, 0:2]
    for a in range(2):
        for b in range(2):
            if block_type == "holistic":
                logit = (weight[2 * a + b] * cell).sum(dim=(1, 2, 3))[:, None]
            elif block_type == "o2o":
                logit = (weight[torch.arange(4) * 4 + 2 * a + b, 0] * cell).sum(dim=(2, 3))
            else:
                logit = torch.einsum("ocij,ncij->no", weight[(2 * a + b) * 4:(2 * a + b + 1) * 4], cell)
            torch.testing.assert_close(decoder[:, :, a, b], torch.sigmoid(logit))


def test_indexnet_pool_and_unpool():
    down = IndexNetDown(4, "m2o").double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    low, decoder = down.forward_with_state(x)
    encoder, decoder_again = down.index_block(x)
    expected = (encoder * x).view(1, 4, 2, 2, 2, 2).sum(dim=(3, 5))
    torch.testing.assert_close(low, expected)
    torch.testing.assert_close(IndexNetUp()(low, decoder), decoder_again * low.repeat_interleave(2, 2)
                               .repeat_interleave(2, 3))
    with pytest.raises(ValueError, match="block_type"):
        IndexNetDown(4, "m2m")


def test_basic_shapes_and_inverse():
    x = torch.randn(1, 8, 4, 6)
    torch.testing.assert_close(DepthToSpace()(SpaceToDepth()(x)), x)
    assert DeconvUp(8, 4)(x).shape == (1, 4, 8, 12)
    with pytest.raises(ValueError, match="even"):
        SpaceToDepth()(torch.randn(1, 8, 3, 4))


@pytest.mark.parametrize("make", [lambda: IndexBlock(8, "m2o"), lambda: IndexBlock(8, "o2o", use_nonlinear=False),
                                  lambda: StridedConvDown(8, 4), lambda: DeconvUp(8, 4)])
def test_init_weights_draws_what_construction_drew(make):
    torch.manual_seed(0)
    module = make()
    built = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(0)
    module.init_weights()
    for key, value in module.state_dict().items():
        assert torch.equal(value, built[key]), key
