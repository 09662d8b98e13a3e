"""A2UKernelGenerator: loop reference (rank/group-correct), kernel properties, parameter counts, gradcheck, init."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from models.ops import A2UKernelGenerator, count_parameters
from tests.test_ops.loop_references import generator_loop


def _randomised(gen: A2UKernelGenerator) -> A2UKernelGenerator:
    """Random (non-default) weights incl. GroupNorm affine, in float64, so every term is exercised."""
    gen = gen.double()
    with torch.no_grad():
        for p in gen.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return gen


@pytest.mark.parametrize("shared,rank,groups,s,k", [(True, 1, 1, 3, 6), (False, 1, 1, 3, 5), (True, 2, 2, 3, 4),
                                                    (False, 3, 2, 1, 6), (True, 1, 1, 5, 3)])
def test_generator_matches_loop_reference(shared, rank, groups, s, k):
    gen = _randomised(A2UKernelGenerator(4, up_kernel=s, up_group=groups, encoder_kernel=k, rank=rank, shared=shared,
                                         norm_groups=2))
    x = torch.randn(2, 4, 6, 8, dtype=torch.float64)
    down, up = gen(x)
    expected_down, expected_up = generator_loop(gen, x)
    assert down.shape == (2, groups * (2 * s) ** 2, 3, 4) and up.shape == (2, groups * s * s, 6, 8)
    torch.testing.assert_close(down.double(), expected_down, atol=1e-10, rtol=0)
    torch.testing.assert_close(up.double(), expected_up, atol=1e-10, rtol=0)
    torch.testing.assert_close(gen.down_kernels(x), down)
    torch.testing.assert_close(gen.up_kernels(x), up)


@pytest.mark.parametrize("s", [1, 3, 5])
def test_kernel_normalisation_and_bounds(s):
    gen = A2UKernelGenerator(32, up_kernel=s, up_group=2)
    with torch.no_grad():
        gen.proj_up.weight.mul_(50)               # push logits to saturation to probe the bounds
    down, up = gen(torch.randn(2, 32, 8, 8))
    up = up.view(2, 2, s * s, 8, 8)
    torch.testing.assert_close(down.view(2, 2, -1, 4, 4).sum(2), torch.ones(2, 2, 4, 4))
    if s == 1:
        assert torch.all((up > 0) & (up < 1))      # sigmoid only
        return
    torch.testing.assert_close(up.sum(2), torch.ones(2, 2, 8, 8))
    low, high = 1 / (1 + (s * s - 1) * math.e), math.e / (math.e + s * s - 1)
    assert up.min() >= low - 1e-6 and up.max() <= high + 1e-6


@pytest.mark.parametrize("channels,expected", [(64, 5066), (128, 10058), (256, 20042)])
def test_parameter_counts_match_spec(channels, expected):
    assert count_parameters(A2UKernelGenerator(channels)) == expected == 78 * channels + 74
    unshared = count_parameters(A2UKernelGenerator(channels, shared=False))
    assert unshared == 2 * channels ** 2 + 78 * channels + 72


def test_generator_gradcheck():
    gen = _randomised(A2UKernelGenerator(4, 3, 2, 4, rank=2, norm_groups=2))
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    params = [gen.filter_u.weight, gen.proj_up.weight, gen.norm_v.weight]

    def both(inp, *_):
        down, up = gen(inp)
        return down, up
    assert gradcheck(both, (x, *params), fast_mode=True)


def test_self_guided_embedding_keeps_resolution():
    gen = A2UKernelGenerator(32, predict_down=False)
    up = gen.up_kernels(torch.randn(1, 32, 5, 7), stride=1)
    assert up.shape == (1, 9, 10, 14)
    with pytest.raises(ValueError, match="predict_down"):
        gen(torch.randn(1, 32, 4, 4))


@pytest.mark.parametrize("kwargs,match", [
    (dict(channels=32, up_kernel=4), "up_kernel"),
    (dict(channels=30), "norm_groups"),
    (dict(channels=32, up_group=3), "up_group"),
    (dict(channels=32, rank=0), "rank"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A2UKernelGenerator(**kwargs)


def test_bad_inputs():
    gen = A2UKernelGenerator(32)
    with pytest.raises(ValueError, match="even height"):
        gen(torch.randn(1, 32, 5, 4))
    with pytest.raises(ValueError, match="N×32×H×W"):
        gen(torch.randn(1, 16, 4, 4))


def test_init_weights_draws_what_construction_drew():
    torch.manual_seed(0)
    gen = A2UKernelGenerator(32, rank=2, shared=False)
    built = {k: v.clone() for k, v in gen.state_dict().items()}
    torch.manual_seed(0)
    gen.init_weights()
    for key, value in gen.state_dict().items():
        assert torch.equal(value, built[key]), key
