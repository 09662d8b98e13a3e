"""A2U's up-kernel normalisation ablation: `A2UKernelGenerator(up_norm=...)` and the pairs a2u-softmax, a2u-sumnorm."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.ops.a2u import A2UKernelGenerator
from models.ops.pairs import UP_NORM_PAIR_NAMES, build_pair, count_parameters

UP_NORMS = ("sigmoid-softmax", "softmax", "sigmoid-sum")


def _grouped(gen: A2UKernelGenerator, logits: torch.Tensor) -> torch.Tensor:
    """The logits as normalise_up groups them: pixel shuffle, then N×G×s²×2h×2w."""
    shuffled = F.pixel_shuffle(logits, 2)
    n, _, h, w = shuffled.shape
    return shuffled.view(n, gen.up_group, gen.up_kernel ** 2, h, w)


def _logits(gen: A2UKernelGenerator, scale: float = 3.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(2, 4 * gen.up_kernel ** 2 * gen.up_group, 5, 6, generator=g)


def test_up_norms_are_the_documented_ones():
    assert A2UKernelGenerator.UP_NORMS == UP_NORMS
    assert A2UKernelGenerator(32).up_norm == "sigmoid-softmax"                      # the official default


@pytest.mark.parametrize("up_kernel, up_group", [(3, 1), (5, 2), (1, 1)])
@pytest.mark.parametrize("up_norm", UP_NORMS)
def test_every_mode_gives_non_negative_kernels_summing_to_one(up_norm, up_kernel, up_group):
    gen = A2UKernelGenerator(32, up_kernel=up_kernel, up_group=up_group, up_norm=up_norm)
    kernels = gen.normalise_up(_logits(gen))
    assert kernels.shape == (2, up_group * up_kernel ** 2, 10, 12)
    assert bool((kernels >= 0).all())
    sums = kernels.view(2, up_group, up_kernel ** 2, 10, 12).sum(dim=2)
    if up_kernel == 1 and up_norm == "sigmoid-softmax":
        assert bool(((sums > 0) & (sums < 1)).all())                                # official s = 1: a sigmoid gate
    else:
        torch.testing.assert_close(sums, torch.ones_like(sums))


def test_softmax_mode_is_the_softmax_of_the_logits():
    gen = A2UKernelGenerator(32, up_group=2, up_norm="softmax")
    logits = _logits(gen)
    expected = torch.softmax(_grouped(gen, logits), dim=2).flatten(1, 2)
    torch.testing.assert_close(gen.normalise_up(logits), expected, rtol=0, atol=0)


def test_sigmoid_sum_mode_is_the_sigmoid_over_its_sum():
    gen = A2UKernelGenerator(32, up_group=2, up_norm="sigmoid-sum")
    logits = _logits(gen)
    sig = torch.sigmoid(_grouped(gen, logits))
    expected = (sig / sig.sum(dim=2, keepdim=True)).flatten(1, 2)
    torch.testing.assert_close(gen.normalise_up(logits), expected)


@pytest.mark.parametrize("up_kernel", [1, 3])
def test_default_mode_is_unchanged_softmax_of_sigmoid(up_kernel):
    gen = A2UKernelGenerator(32, up_kernel=up_kernel, up_group=1)
    logits = _logits(gen)
    sig = torch.sigmoid(_grouped(gen, logits))
    expected = (torch.softmax(sig, dim=2) if up_kernel > 1 else sig).flatten(1, 2)
    torch.testing.assert_close(gen.normalise_up(logits), expected, rtol=0, atol=0)   # bit-identical
    explicit = A2UKernelGenerator(32, up_kernel=up_kernel, up_norm="sigmoid-softmax")
    torch.testing.assert_close(explicit.normalise_up(logits), expected, rtol=0, atol=0)


def test_official_bound_holds_and_softmax_mode_breaks_it():
    logits = torch.zeros(1, 36, 1, 1)
    logits[:, 16:20] = 20.0                              # tap 4 (the centre, s=3, G=1) of all 4 sub-pixels
    official = A2UKernelGenerator(32).normalise_up(logits)
    e = torch.e
    assert 1 / (1 + 8 * e) - 1e-6 <= float(official.min()) and float(official.max()) <= e / (e + 8) + 1e-6
    sharp = A2UKernelGenerator(32, up_norm="softmax").normalise_up(logits)
    assert float(sharp.max()) > 0.9 and float(sharp.view(1, 9, 2, 2)[:, 4].min()) > 0.9
    summed = A2UKernelGenerator(32, up_norm="sigmoid-sum").normalise_up(torch.where(logits > 0, logits, -20.0))
    assert float(summed.max()) > 0.9                     # sigmoid-sum is not bounded by 0.254 either


def test_down_kernels_do_not_depend_on_up_norm():
    x = torch.randn(2, 32, 8, 8)
    torch.manual_seed(0)
    official = A2UKernelGenerator(32)
    torch.manual_seed(0)
    ablated = A2UKernelGenerator(32, up_norm="softmax")
    down_a, up_a = official(x)
    down_b, up_b = ablated(x)
    torch.testing.assert_close(down_a, down_b, rtol=0, atol=0)
    assert not torch.allclose(up_a, up_b)


@pytest.mark.parametrize("bad", ["Softmax", "sigmoid", None, ""])
def test_a_bad_up_norm_raises_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"up_norm must be one of .*sigmoid-softmax.*softmax.*sigmoid-sum"):
        A2UKernelGenerator(32, up_norm=bad)
    with pytest.raises(ValueError, match="up_norm"):
        build_pair("a2u", 32, up_norm=bad if bad is not None else 3)


@pytest.mark.parametrize("name, up_norm", [("a2u-softmax", "softmax"), ("a2u-sumnorm", "sigmoid-sum")])
def test_pairs_build_run_and_match_a2u_parameters(name, up_norm):
    assert name in UP_NORM_PAIR_NAMES
    pair = build_pair(name, 32)
    assert pair.up_norm == up_norm and pair.downsampler.generator.up_norm == up_norm
    assert count_parameters(pair) == count_parameters(build_pair("a2u", 32)) == 78 * 32 + 74
    assert count_parameters(build_pair(name, 64)) == 5066
    x = torch.randn(2, 32, 16, 16, requires_grad=True)
    low, state = pair.down(x)
    assert low.shape == (2, 32, 8, 8) and state.shape == (2, 9, 16, 16)
    torch.testing.assert_close(state.view(2, 9, 16, 16).sum(1), torch.ones(2, 16, 16))
    out = pair.up(low, state)
    assert out.shape == (2, 32, 16, 16)
    out.square().sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in pair.parameters()), name


def test_pairs_change_only_the_up_normalisation():
    x = torch.randn(1, 32, 8, 8)
    pairs = {}
    for name in ("a2u", "a2u-softmax", "a2u-sumnorm"):
        torch.manual_seed(1)
        pairs[name] = build_pair(name, 32)
    assert pairs["a2u"].up_norm == "sigmoid-softmax"
    ref_low, ref_state = pairs["a2u"].down(x)
    for name in UP_NORM_PAIR_NAMES:                      # same initial weights, same downsampling, other up kernels
        low, state = pairs[name].down(x)
        torch.testing.assert_close(low, ref_low, rtol=0, atol=0)
        assert not torch.allclose(state, ref_state)
    assert build_pair("a2u-softmax", 32, up_norm="sigmoid-softmax").up_norm == "sigmoid-softmax"   # keyword wins
    assert build_pair("a2u", 32, up_norm="sigmoid-sum").downsampler.generator.up_norm == "sigmoid-sum"
