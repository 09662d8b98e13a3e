"""Cache-blocked reassembly kernels: many blocks, one-sided gradients, strided inputs, block cover, memory.

The reference is the unfold formulation differentiated by autograd (`*_unfold`), independent of the blocked
kernels. `BLOCK_BYTES` is shrunk so that tiny tensors are split into one-row bands and multi-image blocks.
Every case runs twice: through the NCHW row kernels (`SMALL_MAP_PIXELS` = 0) and through the channels-last
small-map upsampling kernels of `small.py` (every test map counts as small; A2D has only the row kernels).

These are the pure-PyTorch kernels: `K.reassemble_up` / `K.a2d_downsample` take the fused C++ op on CPU when it
is built, so every test here runs inside `fused_cpu.fallback()` (autouse fixture `_pure_pytorch`); the fused op
has its own tests (`test_fused_cpu.py`).
"""
from __future__ import annotations

import warnings

import pytest
import torch

from models.ops import kernels as K
from models.ops.kernels import common, fused_cpu

#: one low-res row per block, a few rows / images per block, everything in one block
BLOCK_SIZES = [64, 1500, 1 << 20]
#: `common.SMALL_MAP_PIXELS` values: the NCHW row kernels only, the small-map kernels for every test map
PATHS = {"rows": 0, "small": 1 << 30}


@pytest.fixture(autouse=True)
def _pure_pytorch():
    """Force the pure-PyTorch blocked kernels (not the fused C++ op) and silence the fallback's one warning."""
    with fused_cpu.fallback(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="a2u: fused CPU reassembly disabled", category=RuntimeWarning)
        yield


@pytest.fixture(params=list(PATHS))
def path(request, monkeypatch):
    """Run the test through one of the two kernel families."""
    monkeypatch.setattr(common, "SMALL_MAP_PIXELS", PATHS[request.param])
    return request.param
UP_CASES = [(3, 4, 7, 5, 2, 3, 2), (2, 2, 5, 4, 1, 5, 2), (2, 3, 4, 3, 1, 3, 3), (2, 2, 3, 3, 1, 1, 2),
            (1, 2, 1, 4, 1, 3, 2)]                       # (n, c, h, w, groups, s, scale)
DOWN_CASES = [(3, 4, 10, 8, 2, 6), (2, 2, 6, 4, 1, 2), (2, 2, 8, 12, 1, 4), (1, 2, 2, 2, 1, 6),
              (2, 2, 4, 10, 1, 6)]                       # (n, c, H, W, groups, k)


def _value_and_grads(fn, x: torch.Tensor, kernels: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor]:
    x, kernels = x.detach().requires_grad_(), kernels.detach().requires_grad_()
    out = fn(x, kernels)
    return [out.detach(), *torch.autograd.grad(out, (x, kernels), grad)]


def test_pure_pytorch_kernels_run_here():
    """The autouse fixture really routes K.reassemble_up / K.a2d_downsample to the autograd Functions."""
    assert fused_cpu.backend("cpu") == "eager"
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    up = K.reassemble_up(x, torch.rand(1, 9, 6, 6), 3)
    down = K.a2d_downsample(x[..., :2, :2], torch.rand(1, 36, 1, 1), 6)
    assert type(up.grad_fn).__name__ == "ReassembleUpFunctionBackward"
    assert type(down.grad_fn).__name__ == "A2DDownsampleFunctionBackward"


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
@pytest.mark.parametrize("n,c,h,w,groups,s,scale", UP_CASES)
def test_blocked_upsample_and_gradients_match_unfold(monkeypatch, path, block_bytes, n, c, h, w, groups, s, scale):
    monkeypatch.setattr(common, "BLOCK_BYTES", block_bytes)
    gen = torch.Generator().manual_seed(n * 100 + c * 10 + s)
    x = torch.randn(n, c, h, w, dtype=torch.float64, generator=gen)
    kernels = torch.randn(n, groups * s * s, h * scale, w * scale, dtype=torch.float64, generator=gen)
    grad = torch.randn(n, c, h * scale, w * scale, dtype=torch.float64, generator=gen)
    expected = _value_and_grads(lambda a, b: K.reassemble_up_unfold(a, b, s, groups, scale), x, kernels, grad)
    got = _value_and_grads(lambda a, b: K.reassemble_up(a, b, s, groups, scale), x, kernels, grad)
    for name, value, ref in zip(("output", "grad_x", "grad_kernels"), got, expected):
        torch.testing.assert_close(value, ref, atol=1e-10, rtol=0, msg=lambda m: f"{name}: {m}")
    with torch.no_grad():                          # the direct (no autograd) path
        torch.testing.assert_close(K.reassemble_up(x, kernels, s, groups, scale), expected[0], atol=1e-10, rtol=0)


@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
@pytest.mark.parametrize("n,c,hh,ww,groups,k", DOWN_CASES)
def test_blocked_downsample_and_gradients_match_unfold(monkeypatch, path, block_bytes, n, c, hh, ww, groups, k):
    monkeypatch.setattr(common, "BLOCK_BYTES", block_bytes)
    gen = torch.Generator().manual_seed(n * 100 + c * 10 + k)
    x = torch.randn(n, c, hh, ww, dtype=torch.float64, generator=gen)
    kernels = torch.randn(n, groups * k * k, hh // 2, ww // 2, dtype=torch.float64, generator=gen)
    grad = torch.randn(n, c, hh // 2, ww // 2, dtype=torch.float64, generator=gen)
    expected = _value_and_grads(lambda a, b: K.a2d_downsample_unfold(a, b, k, groups), x, kernels, grad)
    got = _value_and_grads(lambda a, b: K.a2d_downsample(a, b, k, groups), x, kernels, grad)
    for name, value, ref in zip(("output", "grad_x", "grad_kernels"), got, expected):
        torch.testing.assert_close(value, ref, atol=1e-10, rtol=0, msg=lambda m: f"{name}: {m}")
    with torch.no_grad():
        torch.testing.assert_close(K.a2d_downsample(x, kernels, k, groups), expected[0], atol=1e-10, rtol=0)


@pytest.mark.parametrize("wrt", ["x", "kernels"])
def test_one_sided_gradients_with_many_blocks(monkeypatch, path, wrt):
    monkeypatch.setattr(common, "BLOCK_BYTES", 64)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64, generator=gen)
    ku = torch.rand(2, 9, 10, 12, dtype=torch.float64, generator=gen)
    xd = torch.randn(2, 4, 6, 8, dtype=torch.float64, generator=gen)
    kd = torch.rand(2, 36, 3, 4, dtype=torch.float64, generator=gen)
    for op, ref, a, b, k in ((K.reassemble_up, K.reassemble_up_unfold, x, ku, 3),
                             (K.a2d_downsample, K.a2d_downsample_unfold, xd, kd, 6)):
        leaf = (a if wrt == "x" else b).clone().requires_grad_()
        args = (leaf, b) if wrt == "x" else (a, leaf)
        got = torch.autograd.grad(op(*args, k).square().sum(), leaf)[0]
        expected = torch.autograd.grad(ref(*args, k).square().sum(), leaf)[0]
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


def test_strided_inputs_match_contiguous(monkeypatch, path):
    monkeypatch.setattr(common, "BLOCK_BYTES", 256)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 6, 10, dtype=torch.float64, generator=gen)[..., ::2]      # 2×4×6×5, column stride 2
    ku = torch.rand(2, 10, 12, 9, dtype=torch.float64, generator=gen).permute(0, 3, 2, 1)  # 2×9×12×10
    xd = torch.randn(2, 8, 6, 4, dtype=torch.float64, generator=gen)[:, ::2]
    kd = torch.rand(2, 36, 3, 2, dtype=torch.float64, generator=gen).flip(-1)
    torch.testing.assert_close(K.reassemble_up(x, ku, 3), K.reassemble_up_unfold(x.contiguous(), ku.contiguous(), 3),
                               atol=1e-10, rtol=0)
    torch.testing.assert_close(K.a2d_downsample(xd, kd, 6),
                               K.a2d_downsample_unfold(xd.contiguous(), kd.contiguous(), 6), atol=1e-10, rtol=0)


@pytest.mark.parametrize("n,rows,row_bytes,threads", [(1, 10, 300, 1), (5, 3, 100, 1), (4, 7, 5000, 2),
                                                      (3, 1, 10 ** 9, 1), (2, 9, 64, 2)])
def test_blocks_cover_every_image_row_once(monkeypatch, n, rows, row_bytes, threads):
    monkeypatch.setattr(common, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(common, "DEVICE_BLOCK_BYTES", 3000)
    for fraction, device_type in ((1.0, "cpu"), (0.25, "cpu"), (1.0, "cuda"), (0.5, "cuda")):
        blocks = common.blocks(n, rows, row_bytes, max_fraction=fraction, device_type=device_type)
        seen = torch.zeros(n, rows, dtype=torch.int64)
        for batch, band in blocks:
            seen[batch, band] += 1
        assert bool((seen == 1).all()), f"blocks {blocks} for {n}×{rows} ({device_type}, {fraction})"


def test_forward_extra_memory_at_most_the_output(monkeypatch):
    """The NCHW row kernels (every map above `SMALL_MAP_PIXELS`) hold at most one output's worth of temps."""
    monkeypatch.setattr(common, "SMALL_MAP_PIXELS", 0)
    memory = pytest.importorskip("pipeline.bench.memory")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 32, 32, generator=gen)
    ku = torch.softmax(torch.randn(1, 9, 64, 64, generator=gen), 1)
    kd = torch.softmax(torch.randn(1, 36, 16, 16, generator=gen), 1)
    for fn, out_bytes in ((lambda: K.reassemble_up(x, ku, 3), 64 * 64 * 64 * 4),
                          (lambda: K.a2d_downsample(x, kd, 6), 64 * 16 * 16 * 4)):
        peak = memory.peak_memory_cpu(fn).peak_bytes
        assert out_bytes <= peak <= 2 * out_bytes, f"peak {peak} B for an output of {out_bytes} B"


def test_small_map_kernels_memory_is_bounded_by_the_input(monkeypatch):
    """The small-map kernels trade memory for speed: temps stay within a few times the larger of input and
    output (padded channels-last copies of x, the kernels and the accumulator; small maps only)."""
    monkeypatch.setattr(common, "SMALL_MAP_PIXELS", 1 << 30)
    memory = pytest.importorskip("pipeline.bench.memory")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 16, 16, generator=gen)
    ku = torch.softmax(torch.randn(4, 9, 32, 32, generator=gen), 1)
    out_bytes = 4 * x.numel() * 4
    peak = memory.peak_memory_cpu(lambda: K.reassemble_up(x, ku, 3)).peak_bytes
    assert peak <= 4 * out_bytes, f"peak {peak} B for an output of {out_bytes} B"


@pytest.mark.parametrize("n,c,h,w", [(3, 32, 4, 4), (2, 64, 8, 6)])
def test_small_and_row_kernels_agree_in_float32(monkeypatch, n, c, h, w):
    """Both upsampling kernel families on the same float32 data (the training dtype), up to summation order."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(n, c, h, w, generator=gen)
    ku = torch.softmax(torch.randn(n, 9, 2 * h, 2 * w, generator=gen), 1)
    grad = torch.randn(n, c, 2 * h, 2 * w, generator=gen)
    results = {}
    for name, pixels in PATHS.items():
        monkeypatch.setattr(common, "SMALL_MAP_PIXELS", pixels)
        results[name] = _value_and_grads(lambda a, b: K.reassemble_up(a, b, 3), x, ku, grad)
    for rows, small in zip(results["rows"], results["small"]):
        torch.testing.assert_close(rows, small, atol=1e-5, rtol=1e-5)
