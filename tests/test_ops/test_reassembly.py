"""reassemble_up (a2u_upsample) / a2d_downsample against loop transcriptions, gradients, layouts and argument checks.

Every test runs twice (autouse fixture `_backend`): with the default CPU dispatch (the fused C++ op when built)
and inside `fused_cpu.fallback()` (the pure-PyTorch autograd Functions / blocked kernels).
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.autograd import gradcheck

from models.ops import kernels as K
from models.ops.kernels import fused_cpu
from tests.test_ops.loop_references import downsample_loop, upsample_loop

UP_CASES = [(1, 1, 2, (3, 4), 2), (3, 1, 2, (3, 4), 1), (3, 2, 2, (4, 3), 2), (5, 1, 2, (2, 3), 3),
            (5, 2, 2, (3, 3), 1), (3, 1, 3, (2, 2), 2), (1, 2, 1, (2, 2), 2)]
DOWN_CASES = [(2, 1, (4, 6), 2), (4, 1, (6, 4), 1), (4, 2, (4, 4), 2), (6, 1, (6, 8), 2), (6, 2, (4, 6), 3),
              (6, 1, (2, 2), 1)]
UP_PATHS = [K.reassemble_up, K.reassemble_up_plain, K.reassemble_up_unfold]
DOWN_PATHS = [K.a2d_downsample, K.a2d_downsample_plain, K.a2d_downsample_unfold]


@pytest.fixture(autouse=True, params=["default", "pure-pytorch"])
def _backend(request):
    """The default dispatch (fused C++ op on CPU when built), then the forced pure-PyTorch path."""
    if request.param == "default":
        yield
        return
    with fused_cpu.fallback(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="a2u: fused CPU reassembly disabled", category=RuntimeWarning)
        yield


@pytest.mark.parametrize("s,groups,scale,hw,n", UP_CASES)
def test_upsample_matches_loop_reference(s, groups, scale, hw, n):
    h, w = hw
    x = torch.randn(n, 4, h, w, dtype=torch.float64)
    kernels = torch.randn(n, groups * s * s, h * scale, w * scale, dtype=torch.float64)
    expected = upsample_loop(x, kernels, s, groups, scale)
    for op in UP_PATHS:
        torch.testing.assert_close(op(x, kernels, s, groups, scale), expected, atol=1e-10, rtol=0)
    with torch.enable_grad():                      # the autograd.Function path
        out = K.reassemble_up(x.requires_grad_(), kernels, s, groups, scale)
    torch.testing.assert_close(out.detach(), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("k,groups,hw,n", DOWN_CASES)
def test_downsample_matches_loop_reference(k, groups, hw, n):
    x = torch.randn(n, 4, *hw, dtype=torch.float64)
    kernels = torch.randn(n, groups * k * k, hw[0] // 2, hw[1] // 2, dtype=torch.float64)
    expected = downsample_loop(x, kernels, k, groups)
    for op in DOWN_PATHS:
        torch.testing.assert_close(op(x, kernels, k, groups), expected, atol=1e-10, rtol=0)
    out = K.a2d_downsample(x.requires_grad_(), kernels, k, groups)
    torch.testing.assert_close(out.detach(), expected, atol=1e-10, rtol=0)


def test_a2u_upsample_is_the_generic_reassembly():
    assert K.a2u_upsample is K.reassemble_up


def test_batch_composition_does_not_matter():
    x = torch.randn(3, 4, 4, 4, dtype=torch.float64)
    ku = torch.rand(3, 18, 8, 8, dtype=torch.float64)
    kd = torch.rand(3, 72, 2, 2, dtype=torch.float64)
    up, down = K.reassemble_up(x, ku, 3, 2), K.a2d_downsample(x, kd, 6, 2)
    for i in range(3):
        torch.testing.assert_close(K.reassemble_up(x[i:i + 1], ku[i:i + 1], 3, 2), up[i:i + 1], atol=1e-12, rtol=0)
        torch.testing.assert_close(K.a2d_downsample(x[i:i + 1], kd[i:i + 1], 6, 2), down[i:i + 1], atol=1e-12,
                                   rtol=0)


@pytest.mark.parametrize("s,groups", [(3, 2), (1, 1)])
def test_upsample_gradcheck(s, groups):
    x = torch.randn(2, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    kernels = torch.randn(2, groups * s * s, 6, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, b: K.reassemble_up(a, b, s, groups), (x, kernels), fast_mode=True)


@pytest.mark.parametrize("k,groups", [(6, 2), (2, 1)])
def test_downsample_gradcheck(k, groups):
    x = torch.randn(2, 4, 4, 6, dtype=torch.float64, requires_grad=True)
    kernels = torch.randn(2, groups * k * k, 2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, b: K.a2d_downsample(a, b, k, groups), (x, kernels), fast_mode=True)


def test_gradient_wrt_one_input_only():
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    kernels = torch.rand(1, 9, 6, 6, dtype=torch.float64)
    K.reassemble_up(x, kernels, 3).sum().backward()
    expected = torch.autograd.grad(K.reassemble_up_unfold(x, kernels, 3).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)


def test_channels_last_matches_contiguous():
    x = torch.randn(2, 8, 6, 4)
    ku, kd = torch.rand(2, 9, 12, 8), torch.rand(2, 36, 3, 2)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(K.reassemble_up(x_cl, ku.contiguous(memory_format=torch.channels_last), 3),
                               K.reassemble_up(x, ku, 3))
    torch.testing.assert_close(K.a2d_downsample(x_cl, kd, 6), K.a2d_downsample(x, kd, 6))
    x_cl.requires_grad_()
    K.reassemble_up(x_cl, ku, 3).square().sum().backward()
    reference = x.clone().requires_grad_()
    K.reassemble_up(reference, ku, 3).square().sum().backward()
    torch.testing.assert_close(x_cl.grad, reference.grad)


def test_bf16_autocast_matches_fp32_loosely():
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    ku = torch.softmax(torch.randn(1, 9, 12, 12), 1)
    kd = torch.softmax(torch.randn(1, 36, 3, 3), 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        up, down = K.reassemble_up(x, ku, 3), K.a2d_downsample(x, kd, 6)
    assert up.dtype == down.dtype == torch.bfloat16
    torch.testing.assert_close(up.float(), K.reassemble_up(x, ku, 3), atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(down.float(), K.a2d_downsample(x, kd, 6), atol=3e-2, rtol=3e-2)
    (up.float().sum() + down.float().sum()).backward()
    assert x.grad is not None and x.grad.dtype == torch.float32


def test_jit_trace_uses_plain_path():
    x, ku = torch.randn(1, 4, 3, 3), torch.rand(1, 9, 6, 6)
    traced = torch.jit.trace(lambda a, b: K.reassemble_up(a, b, 3), (x, ku))
    torch.testing.assert_close(traced(x, ku), K.reassemble_up(x, ku, 3))


@pytest.mark.parametrize("call,match", [
    (lambda: K.reassemble_up(torch.randn(1, 4, 3, 3), torch.rand(1, 4, 6, 6), 2), "kernel_size"),
    (lambda: K.reassemble_up(torch.randn(1, 4, 3, 3), torch.rand(1, 9, 5, 6), 3), "kernels must have shape"),
    (lambda: K.reassemble_up(torch.randn(1, 5, 3, 3), torch.rand(1, 18, 6, 6), 3, 2), "group_size"),
    (lambda: K.reassemble_up(torch.randn(4, 3, 3), torch.rand(1, 9, 6, 6), 3), "x must be a 4-D"),
    (lambda: K.a2d_downsample(torch.randn(1, 4, 5, 4), torch.rand(1, 36, 2, 2), 6), "even height and width"),
    (lambda: K.a2d_downsample(torch.randn(1, 4, 4, 4), torch.rand(1, 25, 2, 2), 5), "kernel_size"),
    (lambda: K.a2d_downsample(torch.randn(1, 4, 4, 4), torch.rand(1, 36, 2, 3), 6), "kernels must have shape"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
