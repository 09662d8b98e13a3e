"""The generator's correlation Function (custom backward) against autograd's grouped convolution, gradcheck,
and run-to-run determinism in float32; the pooled+mean context against the plain ops."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from models.ops.kernels import depthwise, fused_cpu
from models.ops.kernels.depthwise import depthwise_correlations, pool_and_mean


def _filters(n: int, sets: int, c: int, k: int, shared: bool, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, sets if shared else sets * c, k, k, dtype=dtype)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("stride,k", [(2, 6), (2, 5), (1, 6), (1, 3)])
@pytest.mark.parametrize("sets", [2, 4])
def test_function_matches_autograd_of_the_grouped_convolution(shared, stride, k, sets):
    gen = torch.Generator().manual_seed(sets * 10 + k)
    x = torch.randn(3, 4, 8, 10, dtype=torch.float64, generator=gen)
    f = _filters(3, sets, 4, k, shared).normal_(generator=gen)
    grads = None
    results = []
    for fn in (depthwise._CorrelationFunction.apply, depthwise._correlations_eager):
        xl, fl = x.clone().requires_grad_(), f.clone().requires_grad_()
        outs = fn(xl, fl, k, sets, stride)
        grads = grads or [torch.randn_like(o) for o in outs]
        torch.autograd.backward(outs, grads)
        results.append([*outs, xl.grad, fl.grad])
    assert results[0][0].shape == (3, 4, 8 // stride, 10 // stride)
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("shared,stride", [(True, 2), (False, 2), (True, 1)])
def test_function_gradcheck(shared, stride):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    f = _filters(2, 2, 3, 4, shared).requires_grad_()
    assert gradcheck(lambda a, b: depthwise._CorrelationFunction.apply(a, b, 4, 2, stride), (x, f), fast_mode=True)


def test_public_function_uses_the_custom_backward_and_is_deterministic():
    calls = []
    original = depthwise._CorrelationFunction.backward

    def spy(ctx, *grads):
        calls.append(1)
        return original(ctx, *grads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 32, 16, 16, generator=gen)
    f = torch.randn(4, 2, 6, 6, generator=gen)
    runs = []
    depthwise._CorrelationFunction.backward = staticmethod(spy)
    try:   # the pure-PyTorch path; where built, the fused C++ op runs instead (test_fused_correlation.py)
        with fused_cpu.fallback(), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for _ in range(2):
                xl, fl = x.clone().requires_grad_(), f.clone().requires_grad_()
                outs = depthwise_correlations(xl, fl, 6, 2, 2)
                (outs[0] * outs[1]).sum().backward()
                runs.append((xl.grad, fl.grad))
    finally:
        depthwise._CorrelationFunction.backward = original
    assert calls == [1, 1]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("height,width", [(16, 24), (7, 13), (6, 6), (32, 32)])
def test_pool_and_mean_match_the_plain_ops_and_their_gradients(height, width):
    x = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    pooled, mean = pool_and_mean(x, 6)
    weights = torch.randn_like(pooled), torch.randn_like(mean)
    grad = torch.autograd.grad((pooled * weights[0]).sum() + (mean * weights[1]).sum(), x)[0]
    ref_pooled, ref_mean = F.adaptive_avg_pool2d(x, 6), x.mean(dim=(2, 3))
    ref_grad = torch.autograd.grad((ref_pooled * weights[0]).sum() + (ref_mean * weights[1]).sum(), x)[0]
    for got, expected in ((pooled, ref_pooled), (mean, ref_mean), (grad, ref_grad)):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("height,width,k", [(9, 11, 6), (5, 4, 6), (13, 7, 4), (1, 3, 2)])
def test_pool_and_mean_odd_sizes_and_bins_match_the_plain_ops(height, width, k):
    """H, W not multiples of k (overlapping bins), smaller than k, and other k: equal to float64 rounding."""
    x = torch.randn(3, 2, height, width, dtype=torch.float64)
    pooled, mean = pool_and_mean(x, k)
    torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, k), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(mean, x.mean(dim=(2, 3)), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("height,width", [(7, 9), (6, 6)])
def test_pool_and_mean_gradcheck(height, width):
    x = torch.randn(2, 3, height, width, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: pool_and_mean(t, 6), (x,))
    assert torch.autograd.gradgradcheck(lambda t: pool_and_mean(t, 6), (x,))


def test_pool_and_mean_cached_matrices_survive_inference_mode_and_dtypes():
    """Matrices first built under inference mode still back a differentiable call; each dtype has its own."""
    depthwise._context_matrices.cache_clear()
    x = torch.randn(1, 2, 10, 12, dtype=torch.float64)
    with torch.inference_mode():
        first = pool_and_mean(x, 6)
    xg = x.clone().requires_grad_()
    pooled, mean = pool_and_mean(xg, 6)
    (pooled.sum() + mean.sum()).backward()
    torch.testing.assert_close(pooled.detach(), first[0])
    assert xg.grad is not None and xg.grad.shape == x.shape
    pooled32, _ = pool_and_mean(x.float(), 6)
    assert pooled32.dtype == torch.float32
    torch.testing.assert_close(pooled32, F.adaptive_avg_pool2d(x.float(), 6))
