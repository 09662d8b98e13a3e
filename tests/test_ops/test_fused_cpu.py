"""Fused C++ CPU reassembly ops (`models.ops.kernels.fused_cpu`, built by `python -m models.ops.build_ext`).

Against the float64 loop transcriptions and the pure-PyTorch paths (fp32, relative 1e-5), gradcheck in float64
on odd sizes and borders, `torch.library.opcheck`, bitwise-identical reruns, and the forced fallback (one
warning). Skipped, with the reason, where the library is not built.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.autograd import gradcheck

from models.ops import kernels as K
from models.ops.kernels import fused_cpu
from tests.test_ops.loop_references import downsample_loop, upsample_loop

pytestmark = pytest.mark.skipif(not fused_cpu.available(),
                                reason=f"fused CPU reassembly not built: {fused_cpu.unavailable_reason()}; "
                                       f"{fused_cpu.BUILD_HINT}")

# (n, c, h, w, groups, s, scale): odd sizes, 1-pixel maps, groups, s = 1/3/5, r = 1/2/3
UP_CASES = [(2, 4, 3, 5, 1, 3, 2), (1, 6, 5, 3, 2, 5, 2), (2, 3, 2, 3, 1, 3, 3), (1, 2, 4, 4, 1, 1, 2),
            (1, 4, 1, 1, 2, 3, 2), (3, 2, 7, 2, 1, 3, 1)]
# (n, c, H, W, groups, k)
DOWN_CASES = [(2, 4, 4, 6, 1, 2), (1, 4, 6, 10, 1, 4), (2, 4, 8, 6, 2, 6), (1, 2, 2, 2, 1, 6), (1, 3, 14, 6, 1, 6)]


def _up_inputs(n, c, h, w, groups, s, scale, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, dtype=dtype, generator=gen)
    kernels = torch.randn(n, groups * s * s, h * scale, w * scale, dtype=dtype, generator=gen)
    return x, kernels


def _down_inputs(n, c, hh, ww, groups, k, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hh, ww, dtype=dtype, generator=gen)
    kernels = torch.randn(n, groups * k * k, hh // 2, ww // 2, dtype=dtype, generator=gen)
    return x, kernels


def _value_and_grads(fn, x, kernels, seed=1):
    x, kernels = x.detach().requires_grad_(), kernels.detach().requires_grad_()
    out = fn(x, kernels)
    grad = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
    return [out.detach(), *torch.autograd.grad(out, (x, kernels), grad)]


def _assert_rel(actual, expected, rel=1e-5):
    scale = expected.abs().max().clamp_min(1e-30)
    assert ((actual - expected).abs().max() / scale).item() <= rel


@pytest.mark.parametrize("n,c,h,w,groups,s,scale", UP_CASES)
def test_up_matches_loop_reference_and_gradcheck(n, c, h, w, groups, s, scale):
    x, kernels = _up_inputs(n, c, h, w, groups, s, scale)
    out = fused_cpu.reassemble_up(x, kernels, s, groups, scale)
    torch.testing.assert_close(out, upsample_loop(x, kernels, s, groups, scale), atol=1e-12, rtol=0)
    torch.testing.assert_close(K.reassemble_up(x, kernels, s, groups, scale), out, atol=0, rtol=0)
    assert gradcheck(lambda a, b: fused_cpu.reassemble_up(a, b, s, groups, scale),
                     (x.requires_grad_(), kernels.requires_grad_()))


@pytest.mark.parametrize("n,c,hh,ww,groups,k", DOWN_CASES)
def test_down_matches_loop_reference_and_gradcheck(n, c, hh, ww, groups, k):
    x, kernels = _down_inputs(n, c, hh, ww, groups, k)
    out = fused_cpu.reassemble_down(x, kernels, k, groups)
    torch.testing.assert_close(out, downsample_loop(x, kernels, k, groups), atol=1e-12, rtol=0)
    torch.testing.assert_close(K.a2d_downsample(x, kernels, k, groups), out, atol=0, rtol=0)
    assert gradcheck(lambda a, b: fused_cpu.reassemble_down(a, b, k, groups),
                     (x.requires_grad_(), kernels.requires_grad_()))


@pytest.mark.parametrize("case", [(2, 32, 9, 7, 1, 3, 2), (1, 16, 20, 24, 2, 5, 2), (3, 8, 4, 4, 1, 3, 2)])
def test_up_fp32_matches_pure_pytorch(case):
    x, kernels = _up_inputs(*case, dtype=torch.float32)
    s, groups, scale = case[5], case[4], case[6]
    fused = _value_and_grads(lambda a, b: K.reassemble_up(a, b, s, groups, scale), x, kernels)
    with fused_cpu.fallback(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = _value_and_grads(lambda a, b: K.reassemble_up(a, b, s, groups, scale), x, kernels)
    for actual, expected in zip(fused, eager):
        _assert_rel(actual, expected)


@pytest.mark.parametrize("case", [(2, 32, 18, 14, 1, 6), (1, 16, 40, 24, 2, 6), (2, 8, 8, 8, 1, 4)])
def test_down_fp32_matches_pure_pytorch(case):
    x, kernels = _down_inputs(*case, dtype=torch.float32)
    k, groups = case[5], case[4]
    fused = _value_and_grads(lambda a, b: K.a2d_downsample(a, b, k, groups), x, kernels)
    with fused_cpu.fallback(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = _value_and_grads(lambda a, b: K.a2d_downsample(a, b, k, groups), x, kernels)
    for actual, expected in zip(fused, eager):
        _assert_rel(actual, expected)


def test_one_sided_gradients_and_channels_last():
    x, ku = _up_inputs(2, 8, 5, 6, 1, 3, 2)
    xd, kd = _down_inputs(2, 8, 10, 12, 1, 6)
    for fn, a, b in [(lambda p, q: K.reassemble_up(p, q, 3), x, ku), (lambda p, q: K.a2d_downsample(p, q, 6), xd, kd)]:
        full = _value_and_grads(fn, a, b)
        a1 = a.clone().requires_grad_()
        out = fn(a1, b)
        gx = torch.autograd.grad(out, a1, torch.randn(out.shape, dtype=out.dtype,
                                                      generator=torch.Generator().manual_seed(1)))[0]
        torch.testing.assert_close(gx, full[1], atol=0, rtol=0)
        b1 = b.clone().requires_grad_()
        out = fn(a, b1)
        gk = torch.autograd.grad(out, b1, torch.randn(out.shape, dtype=out.dtype,
                                                      generator=torch.Generator().manual_seed(1)))[0]
        torch.testing.assert_close(gk, full[2], atol=0, rtol=0)
        a_cl = a.contiguous(memory_format=torch.channels_last)
        out_cl = fn(a_cl, b)
        assert out_cl.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out_cl, full[0], atol=0, rtol=0)


def test_opcheck():
    for dtype in (torch.float32, torch.float64):
        x, ku = _up_inputs(2, 4, 3, 5, 2, 3, 2, dtype=dtype)
        xd, kd = _down_inputs(2, 4, 6, 4, 1, 6, dtype=dtype)
        torch.library.opcheck(torch.ops.a2u.reassemble_up, (x.requires_grad_(), ku.requires_grad_(), 3, 2, 2))
        torch.library.opcheck(torch.ops.a2u.reassemble_down, (xd.requires_grad_(), kd.requires_grad_(), 6, 1))
        grad_up = torch.randn(2, 4, 6, 10, dtype=dtype)
        torch.library.opcheck(torch.ops.a2u.reassemble_up_backward, (grad_up, x.detach(), ku.detach(), 3, 2, 2,
                                                                      True, False))
        torch.library.opcheck(torch.ops.a2u.reassemble_down_backward, (torch.randn(2, 4, 3, 2, dtype=dtype),
                                                                        xd.detach(), kd.detach(), 6, 1, True, True))


def test_torch_compile_sees_one_op():
    x, ku = _up_inputs(1, 4, 4, 4, 1, 3, 2, dtype=torch.float32)
    compiled = torch.compile(lambda a, b: torch.ops.a2u.reassemble_up(a, b, 3, 1, 2), backend="aot_eager",
                             fullgraph=True)
    torch.testing.assert_close(compiled(x, ku), fused_cpu.reassemble_up(x, ku, 3, 1, 2))


def test_two_runs_bitwise_identical():
    x, ku = _up_inputs(2, 16, 12, 10, 1, 3, 2, dtype=torch.float32)
    xd, kd = _down_inputs(2, 16, 24, 20, 1, 6, dtype=torch.float32)
    for fn, a, b in [(lambda p, q: K.reassemble_up(p, q, 3), x, ku), (lambda p, q: K.a2d_downsample(p, q, 6), xd, kd)]:
        first, second = _value_and_grads(fn, a, b), _value_and_grads(fn, a, b)
        threads = torch.get_num_threads()
        try:   # other thread counts split the work into other bands: the numbers must not change
            torch.set_num_threads(1)
            single = _value_and_grads(fn, a, b)
            torch.set_num_threads(2)
            double = _value_and_grads(fn, a, b)
        finally:
            torch.set_num_threads(threads)
        for p, q, r, t in zip(first, second, single, double):
            assert torch.equal(p, q) and torch.equal(p, r) and torch.equal(p, t)


def test_bf16_accumulates_in_fp32():
    x, ku = _up_inputs(1, 8, 6, 6, 1, 3, 2, dtype=torch.float32)
    ku = ku.softmax(1)
    out = fused_cpu.reassemble_up(x.bfloat16(), ku.bfloat16(), 3, 1, 2)
    assert out.dtype == torch.bfloat16
    expected = upsample_loop(x.bfloat16().double(), ku.bfloat16().double(), 3, 1, 2)
    torch.testing.assert_close(out.double(), expected, atol=1e-2, rtol=1e-2)


def test_forced_fallback_runs_pure_pytorch_and_warns_once(monkeypatch):
    x, ku = _up_inputs(1, 4, 3, 3, 1, 3, 2, dtype=torch.float32)
    calls = []
    monkeypatch.setattr(fused_cpu, "reassemble_up", lambda *a: calls.append(a))
    fused_cpu.reset_warnings()
    monkeypatch.setenv(fused_cpu.ENV_VAR, "0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = K.reassemble_up(x, ku, 3), K.reassemble_up(x, ku, 3)
    assert not calls and torch.equal(first, second)
    messages = [str(w.message) for w in caught if "fused CPU reassembly" in str(w.message)]
    assert len(messages) == 1 and fused_cpu.ENV_VAR in messages[0]
    assert fused_cpu.backend() == "eager"
    monkeypatch.delenv(fused_cpu.ENV_VAR)
    assert fused_cpu.backend() == "fused-cpp"
    with fused_cpu.fallback():
        K.reassemble_up(x, ku, 3)
    assert not calls
    K.reassemble_up(x, ku, 3)
    assert len(calls) == 1


def test_missing_library_warns_once_with_build_hint(monkeypatch):
    monkeypatch.setitem(fused_cpu._state, "loaded", False)
    monkeypatch.setitem(fused_cpu._state, "reason", "not built (test)")
    fused_cpu.reset_warnings()
    x, kd = _down_inputs(1, 4, 6, 6, 1, 6, dtype=torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            K.a2d_downsample(x, kd, 6)
    messages = [str(w.message) for w in caught if "fused CPU reassembly" in str(w.message)]
    assert len(messages) == 1 and "build_ext" in messages[0] and "not built (test)" in messages[0]


def test_tracing_keeps_standard_ops():
    x, ku = _up_inputs(1, 4, 3, 3, 1, 3, 2, dtype=torch.float32)
    graph = torch.jit.trace(lambda a, b: K.reassemble_up(a, b, 3), (x, ku)).graph
    assert "a2u::" not in str(graph)
