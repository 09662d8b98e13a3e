"""Triton reassembly ops (`models.ops.kernels.triton`): `a2u_triton::reassemble_up` / `reassemble_down`.

Against the float64 loop transcriptions and the pure-PyTorch paths (fp32, relative 1e-5), gradients against the
plain path's autograd, odd sizes and borders, one-sided gradients, bitwise-identical reruns, opcheck, and parity
with the fused C++ CPU op. Without a GPU the kernels run on CPU tensors through Triton's interpreter: this module
sets TRITON_INTERPRET=1 before triton is first imported (triton decorates its own `tl.*` helpers at import, and
the variable must stay set while kernels run), for the rest of the pytest process, only where triton is installed
and CUDA is not available; if triton was imported earlier in the process the tests skip, saying so. Tests skip, with the reason, when triton is
not importable; the dispatch through `up.py` / `down.py` needs CUDA.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.autograd import gradcheck

CUDA = torch.cuda.is_available()
if not CUDA and "triton" not in sys.modules and importlib.util.find_spec("triton") is not None:
    os.environ.setdefault("TRITON_INTERPRET", "1")   # before triton's first import: it decorates its own helpers

from models.ops import kernels as K  # noqa: E402
from models.ops.kernels import fused_cpu  # noqa: E402
from models.ops.kernels import triton as triton_kernels  # noqa: E402
from tests.test_ops.loop_references import downsample_loop, upsample_loop  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _runnable() -> str | None:
    """None when the kernels can run here, else why not."""
    if not triton_kernels.available():
        return f"{triton_kernels.unavailable_reason()}; install triton (the CUDA torch wheels ship it)"
    if CUDA:
        return None
    if os.environ.get("TRITON_INTERPRET") != "1":
        return "no CUDA, and TRITON_INTERPRET=1 was not set before triton was first imported in this process"
    import triton.language as tl

    from models.ops.kernels.triton import kernels as tk

    if type(tk._forward_kernel).__name__ != "InterpretedFunction" or type(tl.sum).__name__ != "InterpretedFunction":
        return "triton or the kernels were imported before TRITON_INTERPRET=1 was set (no CUDA to compile them)"
    return None


SKIP_REASON = _runnable()
needs_triton = pytest.mark.skipif(SKIP_REASON is not None, reason=f"Triton kernels cannot run: {SKIP_REASON}")
needs_cuda = pytest.mark.skipif(not CUDA or SKIP_REASON is not None,
                                reason="needs a CUDA GPU and triton (dispatch through up.py/down.py)")
DEVICE = torch.device("cuda" if CUDA else "cpu")

# (n, c, h, w, groups, s, scale): odd sizes, 1-pixel maps, groups, s = 1/3/5, r = 1/2/3
UP_CASES = [(2, 4, 3, 5, 1, 3, 2), (1, 6, 5, 3, 2, 5, 2), (2, 3, 2, 3, 1, 3, 3), (1, 2, 4, 4, 1, 1, 2),
            (1, 4, 1, 1, 2, 3, 2), (3, 2, 7, 2, 1, 3, 1)]
# (n, c, H, W, groups, k)
DOWN_CASES = [(2, 4, 4, 6, 1, 2), (1, 4, 6, 10, 1, 4), (2, 4, 8, 6, 2, 6), (1, 2, 2, 2, 1, 6), (1, 3, 14, 6, 1, 6)]


def _up(x, kernels, s, groups=1, scale=2):
    from models.ops.kernels.triton import up

    return up.reassemble_up(x, kernels, s, groups, scale)


def _down(x, kernels, k, groups=1):
    from models.ops.kernels.triton import down

    return down.reassemble_down(x, kernels, k, groups)


def _up_inputs(n, c, h, w, groups, s, scale, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, dtype=dtype, generator=gen)
    kernels = torch.randn(n, groups * s * s, h * scale, w * scale, dtype=dtype, generator=gen)
    return x.to(DEVICE), kernels.to(DEVICE)


def _down_inputs(n, c, hh, ww, groups, k, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, hh, ww, dtype=dtype, generator=gen)
    kernels = torch.randn(n, groups * k * k, hh // 2, ww // 2, dtype=dtype, generator=gen)
    return x.to(DEVICE), kernels.to(DEVICE)


def _value_and_grads(fn, x, kernels, seed=1):
    x, kernels = x.detach().requires_grad_(), kernels.detach().requires_grad_()
    out = fn(x, kernels)
    grad = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    grad = grad.to(out.device, out.dtype)
    return [out.detach(), *torch.autograd.grad(out, (x, kernels), grad)]


def _assert_rel(actual, expected, rel=1e-5):
    scale = expected.abs().max().clamp_min(1e-30)
    assert ((actual.double() - expected.double()).abs().max() / scale).item() <= rel


@needs_triton
@pytest.mark.parametrize("n,c,h,w,groups,s,scale", UP_CASES)
def test_up_matches_loop_reference_and_plain_gradients(n, c, h, w, groups, s, scale):
    x, kernels = _up_inputs(n, c, h, w, groups, s, scale)
    out = _up(x, kernels, s, groups, scale)
    torch.testing.assert_close(out.cpu(), upsample_loop(x.cpu(), kernels.cpu(), s, groups, scale), atol=1e-12, rtol=0)
    got = _value_and_grads(lambda a, b: _up(a, b, s, groups, scale), x, kernels)
    ref = _value_and_grads(lambda a, b: K.reassemble_up_plain(a, b, s, groups, scale), x, kernels)
    for actual, expected in zip(got, ref):
        torch.testing.assert_close(actual, expected, atol=1e-12, rtol=0)


@needs_triton
@pytest.mark.parametrize("n,c,hh,ww,groups,k", DOWN_CASES)
def test_down_matches_loop_reference_and_plain_gradients(n, c, hh, ww, groups, k):
    x, kernels = _down_inputs(n, c, hh, ww, groups, k)
    out = _down(x, kernels, k, groups)
    torch.testing.assert_close(out.cpu(), downsample_loop(x.cpu(), kernels.cpu(), k, groups), atol=1e-12, rtol=0)
    got = _value_and_grads(lambda a, b: _down(a, b, k, groups), x, kernels)
    ref = _value_and_grads(lambda a, b: K.a2d_downsample_plain(a, b, k, groups), x, kernels)
    for actual, expected in zip(got, ref):
        torch.testing.assert_close(actual, expected, atol=1e-12, rtol=0)


@needs_triton
def test_gradcheck_float64():
    x, ku = _up_inputs(1, 4, 3, 2, 2, 3, 2)
    assert gradcheck(lambda a, b: _up(a, b, 3, 2, 2), (x.requires_grad_(), ku.requires_grad_()), fast_mode=True)
    xd, kd = _down_inputs(1, 2, 6, 4, 1, 6)
    assert gradcheck(lambda a, b: _down(a, b, 6, 1), (xd.requires_grad_(), kd.requires_grad_()), fast_mode=True)


@needs_triton
@pytest.mark.parametrize("case", [(2, 19, 9, 7, 1, 3, 2), (1, 16, 11, 6, 2, 5, 2)])
def test_up_fp32_matches_plain(case):
    x, kernels = _up_inputs(*case, dtype=torch.float32)
    s, groups, scale = case[5], case[4], case[6]
    got = _value_and_grads(lambda a, b: _up(a, b, s, groups, scale), x, kernels)
    ref = _value_and_grads(lambda a, b: K.reassemble_up_plain(a, b, s, groups, scale), x.double(), kernels.double())
    for actual, expected in zip(got, ref):
        assert actual.dtype == torch.float32
        _assert_rel(actual, expected)


@needs_triton
@pytest.mark.parametrize("case", [(2, 19, 18, 14, 1, 6), (1, 16, 10, 12, 2, 6), (2, 8, 8, 6, 1, 4)])
def test_down_fp32_matches_plain(case):
    x, kernels = _down_inputs(*case, dtype=torch.float32)
    k, groups = case[5], case[4]
    got = _value_and_grads(lambda a, b: _down(a, b, k, groups), x, kernels)
    ref = _value_and_grads(lambda a, b: K.a2d_downsample_plain(a, b, k, groups), x.double(), kernels.double())
    for actual, expected in zip(got, ref):
        assert actual.dtype == torch.float32
        _assert_rel(actual, expected)


@needs_triton
def test_bf16_error_at_most_that_of_the_plain_bf16_path():
    x, ku = _up_inputs(1, 8, 6, 7, 1, 3, 2, dtype=torch.float32)
    xd, kd = _down_inputs(1, 8, 12, 10, 1, 6, dtype=torch.float32)
    for fn, plain, a, b in [(lambda p, q: _up(p, q, 3), lambda p, q: K.reassemble_up_plain(p, q, 3), x, ku),
                            (lambda p, q: _down(p, q, 6), lambda p, q: K.a2d_downsample_plain(p, q, 6), xd, kd)]:
        a16, b16 = a.bfloat16(), b.bfloat16()
        exact = plain(a16.double(), b16.double())   # of the same bf16 inputs: the error is the op's own
        out = fn(a16, b16)
        assert out.dtype == torch.bfloat16
        err = (out.double() - exact).abs().max()
        assert err <= (plain(a16, b16).double() - exact).abs().max()


@needs_triton
def test_one_sided_gradients_and_channels_last():
    x, ku = _up_inputs(2, 8, 5, 6, 1, 3, 2)
    xd, kd = _down_inputs(2, 8, 10, 12, 1, 6)
    for fn, a, b in [(lambda p, q: _up(p, q, 3), x, ku), (lambda p, q: _down(p, q, 6), xd, kd)]:
        full = _value_and_grads(fn, a, b)
        grad = torch.randn(full[0].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        grad = grad.to(DEVICE, a.dtype)
        a1 = a.clone().requires_grad_()
        torch.testing.assert_close(torch.autograd.grad(fn(a1, b), a1, grad)[0], full[1], atol=0, rtol=0)
        b1 = b.clone().requires_grad_()
        torch.testing.assert_close(torch.autograd.grad(fn(a, b1), b1, grad)[0], full[2], atol=0, rtol=0)
        torch.testing.assert_close(fn(a.contiguous(memory_format=torch.channels_last), b), full[0], atol=0, rtol=0)
        torch.testing.assert_close(fn(a, b.transpose(-1, -2).contiguous().transpose(-1, -2)), full[0], atol=0,
                                   rtol=0)


@needs_triton
def test_two_runs_bitwise_identical():
    x, ku = _up_inputs(2, 12, 7, 9, 2, 5, 2, dtype=torch.float32)
    xd, kd = _down_inputs(2, 12, 14, 10, 2, 6, dtype=torch.float32)
    for fn, a, b in [(lambda p, q: _up(p, q, 5, 2), x, ku), (lambda p, q: _down(p, q, 6, 2), xd, kd)]:
        first, second = _value_and_grads(fn, a, b), _value_and_grads(fn, a, b)
        for one, two in zip(first, second):
            assert torch.equal(one, two)


@needs_triton
def test_matches_fused_cpu_op():
    if not fused_cpu.available():
        pytest.skip(f"fused CPU reassembly not built: {fused_cpu.unavailable_reason()}")
    x, ku = _up_inputs(2, 8, 5, 7, 2, 3, 2, dtype=torch.float32)
    xd, kd = _down_inputs(2, 8, 10, 6, 2, 6, dtype=torch.float32)
    pairs = [(lambda p, q: _up(p, q, 3, 2), lambda p, q: fused_cpu.reassemble_up(p, q, 3, 2, 2), x, ku),
             (lambda p, q: _down(p, q, 6, 2), lambda p, q: fused_cpu.reassemble_down(p, q, 6, 2), xd, kd)]
    for fn, cpp, a, b in pairs:
        for actual, expected in zip(_value_and_grads(fn, a, b), _value_and_grads(cpp, a.cpu(), b.cpu())):
            _assert_rel(actual.cpu(), expected)


@needs_triton
def test_opcheck():
    """Full opcheck on CUDA; under the interpreter only schema and autograd registration (wrap_triton returns the
    interpreted kernel itself, which cannot run on fake tensors)."""
    from models.ops.kernels.triton import down, up

    utils = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    utils = utils if CUDA else utils[:2]
    x, ku = _up_inputs(2, 4, 3, 5, 2, 3, 2, dtype=torch.float32)
    xd, kd = _down_inputs(2, 4, 6, 4, 1, 6, dtype=torch.float32)
    torch.library.opcheck(up.reassemble_up, (x.requires_grad_(), ku.requires_grad_(), 3, 2, 2), test_utils=utils)
    torch.library.opcheck(down.reassemble_down, (xd.requires_grad_(), kd.requires_grad_(), 6, 1), test_utils=utils)
    grad_up = torch.randn(2, 4, 6, 10).to(DEVICE)
    torch.library.opcheck(up.reassemble_up_backward, (grad_up, x.detach(), ku.detach(), 3, 2, 2, True, False),
                          test_utils=utils)
    torch.library.opcheck(down.reassemble_down_backward, (torch.randn(2, 4, 3, 2).to(DEVICE), xd.detach(),
                                                          kd.detach(), 6, 1, True, True), test_utils=utils)


@needs_cuda
def test_cuda_dispatch_uses_triton_and_matches_eager():
    x, ku = _up_inputs(2, 8, 9, 7, 1, 3, 2, dtype=torch.float32)
    xd, kd = _down_inputs(2, 8, 18, 14, 1, 6, dtype=torch.float32)
    assert triton_kernels.backend("cuda") == "triton" and triton_kernels.use_triton(x)
    for public, a, b in [(lambda p, q: K.reassemble_up(p, q, 3), x, ku),
                         (lambda p, q: K.a2d_downsample(p, q, 6), xd, kd)]:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            got = _value_and_grads(public, a, b)
        assert any("a2u_triton::" in event.name for event in prof.events())
        with triton_kernels.disabled():
            assert not triton_kernels.use_triton(a)
            ref = _value_and_grads(public, a, b)
        for actual, expected in zip(got, ref):
            _assert_rel(actual, expected)


def test_cpu_calls_never_import_triton_and_warn_nothing():
    code = ("import sys, warnings; import torch; from models.ops import kernels as K\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    x = torch.randn(1, 2, 3, 3, requires_grad=True)\n"
            "    K.reassemble_up(x, torch.rand(1, 9, 6, 6), 3).sum().backward()\n"
            "    K.a2d_downsample(torch.randn(1, 2, 4, 4), torch.rand(1, 36, 2, 2), 6)\n"
            "assert 'triton' not in sys.modules, 'triton imported'\n"
            "assert not [w for w in caught if 'triton' in str(w.message).lower()], [str(w.message) for w in caught]")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
