"""Fused C++ CPU correlation of the A2U kernel generator (`a2u::correlate`, `fused_cpu.correlate`).

Against `depthwise._correlations_eager` (the grouped convolution differentiated by autograd): float64 values and
gradients to 1e-12 for shared and channel-wise filters, q = 2 / 4, stride 1 / 2, odd and even k, odd sizes and
maps smaller than the window; float32 to 1e-5 relative; gradcheck; `torch.library.opcheck`; bitwise-identical
reruns at 1 and 2 threads; and the routing of `depthwise_correlations` (fused with and without grad, the
pure-PyTorch path under `fused_cpu.fallback()`, `A2U_FUSED_CPU=0`, tracing, autocast and mixed dtypes).
Skipped, with the reason, where the library is not built.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.autograd import gradcheck

from models.ops.kernels import depthwise, fused_cpu
from models.ops.kernels.depthwise import depthwise_correlations

pytestmark = pytest.mark.skipif(not fused_cpu.available(),
                                reason=f"fused CPU ops not built: {fused_cpu.unavailable_reason()}; "
                                       f"{fused_cpu.BUILD_HINT}")


def _fits(h, w, k, stride):
    before = (k - 1) // 2
    after = before if stride == 2 else k // 2
    return h + before + after >= k and w + before + after >= k


# (n, c, h, w): even, odd and one-pixel maps, maps about the size of the window
SIZES = [(2, 3, 8, 10), (1, 4, 7, 9), (2, 2, 1, 1), (1, 3, 2, 5), (2, 2, 13, 3)]


def _inputs(n, c, h, w, k, sets, shared, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, dtype=dtype, generator=gen)
    filters = torch.randn(n, sets if shared else sets * c, k, k, dtype=dtype, generator=gen)
    return x, filters


def _values_and_grads(fn, x, filters, seed=1):
    """Outputs (q × N×C×h×w) and the gradients of x and filters for random output gradients."""
    x, filters = x.detach().requires_grad_(), filters.detach().requires_grad_()
    outs = tuple(fn(x, filters))
    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(o.shape, dtype=o.dtype, generator=gen) for o in outs]
    return [torch.stack([o.detach() for o in outs]), *torch.autograd.grad(outs, (x, filters), grads)]


# every size the grouped convolution accepts (the padded map at least one window)
FLOAT64_CASES = [(size, stride, k, sets) for size in SIZES for stride in (1, 2)
                 for k, sets in ((6, 2), (6, 4), (3, 2), (5, 4), (2, 2), (7, 2)) if _fits(*size[2:], k, stride)]


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("size,stride,k,sets", FLOAT64_CASES)
def test_matches_the_grouped_convolution_in_float64(size, stride, k, sets, shared):
    n, c, h, w = size
    x, filters = _inputs(n, c, h, w, k, sets, shared)
    fused = _values_and_grads(lambda a, b: fused_cpu.correlate(a, b, k, sets, stride).unbind(0), x, filters)
    eager = _values_and_grads(lambda a, b: depthwise._correlations_eager(a, b, k, sets, stride), x, filters)
    assert fused[0].shape == eager[0].shape
    for got, expected in zip(fused, eager):
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("case", [(4, 32, 32, 32, 6, 2, True, 2), (2, 16, 24, 20, 6, 4, False, 2),
                                  (3, 8, 17, 15, 6, 2, True, 1), (2, 64, 8, 8, 5, 2, False, 1),
                                  (1, 8, 64, 48, 3, 2, True, 2)])
def test_float32_matches_the_grouped_convolution(case):
    n, c, h, w, k, sets, shared, stride = case
    x, filters = _inputs(n, c, h, w, k, sets, shared, dtype=torch.float32)
    fused = _values_and_grads(lambda a, b: depthwise_correlations(a, b, k, sets, stride), x, filters)
    eager = _values_and_grads(lambda a, b: depthwise._correlations_eager(a, b, k, sets, stride), x, filters)
    for got, expected in zip(fused, eager):
        assert got.dtype == torch.float32
        scale = expected.abs().max().clamp_min(1e-30)
        assert ((got - expected).abs().max() / scale).item() <= 1e-5


@pytest.mark.parametrize("shared,stride,k", [(True, 2, 6), (False, 2, 5), (True, 1, 4), (False, 1, 3)])
def test_gradcheck(shared, stride, k):
    x, filters = _inputs(2, 3, 5 if stride == 1 else 6, 7 if stride == 1 else 4, k, 2, shared)
    assert gradcheck(lambda a, b: fused_cpu.correlate(a, b, k, 2, stride),
                     (x.requires_grad_(), filters.requires_grad_()))


def test_opcheck():
    for dtype in (torch.float32, torch.float64):
        for shared, stride in ((True, 2), (False, 1)):
            x, filters = _inputs(2, 3, 6, 5, 4, 2, shared, dtype=dtype)
            torch.library.opcheck(torch.ops.a2u.correlate, (x.requires_grad_(), filters.requires_grad_(), 4, 2,
                                                            stride))
            out = fused_cpu.correlate(x.detach(), filters.detach(), 4, 2, stride)
            torch.library.opcheck(torch.ops.a2u.correlate_backward, (torch.randn_like(out), x.detach(),
                                                                     filters.detach(), 4, 2, stride, True, True))
            torch.library.opcheck(torch.ops.a2u.correlate_backward, (torch.randn_like(out), x.detach(),
                                                                     filters.detach(), 4, 2, stride, False, True))


def test_one_sided_gradients_and_non_contiguous_inputs():
    x, filters = _inputs(2, 4, 10, 12, 6, 2, True)
    full = _values_and_grads(lambda a, b: fused_cpu.correlate(a, b, 6, 2, 2), x, filters)
    grad = torch.randn(full[0].shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))
    x1 = x.clone().requires_grad_()
    assert torch.equal(torch.autograd.grad(fused_cpu.correlate(x1, filters, 6, 2, 2), x1, grad)[0], full[1])
    f1 = filters.clone().requires_grad_()
    assert torch.equal(torch.autograd.grad(fused_cpu.correlate(x, f1, 6, 2, 2), f1, grad)[0], full[2])
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(fused_cpu.correlate(x_cl, filters.transpose(2, 3).contiguous().transpose(2, 3), 6, 2, 2),
                       full[0])


def test_two_runs_bitwise_identical_at_any_thread_count():
    for shared, stride in ((True, 2), (False, 2), (True, 1)):
        x, filters = _inputs(3, 16, 20, 18, 6, 2, shared, dtype=torch.float32)
        fn = lambda a, b: depthwise_correlations(a, b, 6, 2, stride)   # noqa: E731
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(2)
            first, second = _values_and_grads(fn, x, filters), _values_and_grads(fn, x, filters)
            torch.set_num_threads(1)
            single = _values_and_grads(fn, x, filters)
        finally:
            torch.set_num_threads(threads)
        for p, q, r in zip(first, second, single):
            assert torch.equal(p, q) and torch.equal(p, r)


def test_public_function_takes_the_fused_op_with_and_without_grad(monkeypatch):
    calls = []
    real = fused_cpu.correlate
    monkeypatch.setattr(fused_cpu, "correlate", lambda *a: calls.append(1) or real(*a))
    x, filters = _inputs(2, 4, 8, 8, 6, 2, True, dtype=torch.float32)
    with torch.no_grad():
        outs = depthwise_correlations(x, filters, 6, 2, 2)
    assert calls == [1] and len(outs) == 2 and all(o.shape == (2, 4, 4, 4) and o.is_contiguous() for o in outs)
    expected = depthwise._correlations_eager(x, filters, 6, 2, 2)
    for got, ref in zip(outs, expected):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    xg = x.clone().requires_grad_()
    outs = depthwise_correlations(xg, filters, 6, 2, 2)
    (outs[0] * outs[1]).sum().backward()
    assert calls == [1, 1] and xg.grad is not None


def test_pure_pytorch_path_under_fallback_env_autocast_and_mixed_dtypes(monkeypatch):
    calls = []
    monkeypatch.setattr(fused_cpu, "correlate", lambda *a: calls.append(a))
    spy = []
    original = depthwise._CorrelationFunction.forward
    monkeypatch.setattr(depthwise._CorrelationFunction, "forward",
                        staticmethod(lambda *a: spy.append(1) or original(*a)))
    x, filters = _inputs(2, 4, 8, 8, 6, 2, True, dtype=torch.float32)
    xg = x.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with fused_cpu.fallback():
            depthwise_correlations(xg, filters, 6, 2, 2)[0].sum().backward()
            with torch.no_grad():
                depthwise_correlations(x, filters, 6, 2, 2)
        assert spy == [1]
        monkeypatch.setenv(fused_cpu.ENV_VAR, "0")
        depthwise_correlations(xg, filters, 6, 2, 2)
        monkeypatch.delenv(fused_cpu.ENV_VAR)
        assert spy == [1, 1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        depthwise_correlations(x, filters, 6, 2, 2)
    depthwise_correlations(x.bfloat16(), filters.bfloat16(), 6, 2, 2)         # not a dtype of the op
    assert not calls
    assert not fused_cpu.use_fused_correlation(x.double(), filters)           # mixed dtypes
    assert fused_cpu.use_fused_correlation(x, filters)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_tracing_keeps_standard_ops():
    x, filters = _inputs(1, 4, 8, 8, 6, 2, True, dtype=torch.float32)
    graph = torch.jit.trace(lambda a, b: depthwise_correlations(a, b, 6, 2, 2), (x, filters)).graph
    assert "a2u::" not in str(graph)


def test_rejects_bad_arguments():
    x, filters = _inputs(1, 4, 8, 8, 6, 2, True, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="same dtype"):
        torch.ops.a2u.correlate(x, filters.double(), 6, 2, 2)
    with pytest.raises(RuntimeError, match="stride must be 1 or 2"):
        torch.ops.a2u.correlate(x, filters, 6, 2, 3)
    with pytest.raises(RuntimeError, match="filters must be"):
        torch.ops.a2u.correlate(x, filters, 6, 3, 2)
