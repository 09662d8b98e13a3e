"""The two per-channel steps of the A2U kernel generator, each with an export-friendly form.

1. `adaptive_avg_pool2d`: k×k adaptive average pooling. Under export it uses `adaptive_avg_pool2d_by_matrices`,
   two small averaging matrices built from `arange(H)` and `arange(W)` (bins start ⌊i·H/k⌋, end ⌈(i+1)·H/k⌉, as
   `F.adaptive_avg_pool2d`). The TorchScript ONNX exporter refuses `adaptive_avg_pool2d` with a dynamic input
   size, and the dynamo exporter bakes the example input's bin widths into the graph (silently wrong at other
   sizes); the matrix form keeps the size dependence in the graph. It costs N·C·H·W·k multiply-adds: export only.
2. `depthwise_correlation`: the per-image depthwise correlation with filters predicted from the input (a grouped
   convolution with groups = N·C whose weights are data). Under export it uses `depthwise_correlation_plain`, a
   sum over the k² window offsets of strided views × filter taps: exporters cannot translate a convolution whose
   kernel is only known at run time. Eager on CPU it is the fused C++ op `a2u::correlate`
   (`models/ops/csrc/a2u_correlation.cpp`, `fused_cpu.correlate`; forward and backward one op each, with and
   without grad): 0.4–0.8× the grouped convolutions' time forward and 0.25–0.6× forward+backward at the toy and
   matting shapes (1 thread, measured on the 2-core Xeon; faster at every shape, stride, k and filter kind tried,
   so no size threshold). `_CorrelationFunction` is the pure-PyTorch path where it is not built or disabled.
"Export" means ONNX export or torch.export (`common.is_exporting`); jit tracing (FLOP counting) and
torch.compile use the eager ops.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from torch.autograd.function import once_differentiable
from torch.profiler import record_function

from models.ops.kernels import fused_cpu
from models.ops.kernels.common import is_exporting, is_tracing

__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_by_matrices", "pool_and_mean", "depthwise_correlation", "depthwise_correlations",
           "depthwise_correlation_plain"]


def adaptive_avg_pool2d(x: torch.Tensor, output_size: int) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, output_size)`, or its matrix form while exporting."""
    if is_exporting():
        return adaptive_avg_pool2d_by_matrices(x, output_size)
    return F.adaptive_avg_pool2d(x, output_size)


def pool_and_mean(x: torch.Tensor, output_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(k×k adaptive average pool N×C×k×k, global mean N×C) of x N×C×H×W, the generator's two contexts.

    Eager: separable, one pass over x. With R (k+1)×H and Q (k+1)×W the bin-averaging matrices extended by a
    row of 1/H (1/W), each channel's R·X·Qᵀ is (k+1)×(k+1): [:k, :k] the pool, [k, k] the mean. The H side runs
    first as one batched GEMM with R broadcast over the N·C channels (N·C × (k+1)×H @ H×W: reads x once,
    C·H·W·(k+1) multiply-adds), then one small GEMM ((N·C·(k+1))×W @ W×(k+1)); autograd differentiates both.
    R and Q are cached per (H, W, k, dtype, device). Versus the former W-first order (a skinny
    (N·C·H)×W @ W×(k+1) GEMM, a transpose copy, matrices rebuilt per call): 0.3–0.4× forward, 0.6–0.8× fwd+bwd
    at the matting and toy shapes (1 thread, 2-core Xeon). Tracing (FLOP counts) and export keep the plain ops.
    """
    if is_tracing():
        return adaptive_avg_pool2d(x, output_size), x.mean(dim=(2, 3))
    n, c, hgt, wid = x.shape
    k1 = output_size + 1
    rows, cols = _context_matrices(hgt, wid, output_size, x.dtype, x.device)                   # (k+1)×H, (k+1)×W
    partial = torch.bmm(rows.expand(n * c, k1, hgt), x.reshape(n * c, hgt, wid))               # NC×(k+1)×W
    both = torch.mm(partial.view(n * c * k1, wid), cols.t()).view(n, c, k1, k1)                # N×C×(k+1)²
    return both[..., :output_size, :output_size], both[..., output_size, output_size]


@functools.lru_cache(maxsize=32)
def _context_matrices(hgt: int, wid: int, bins: int, dtype: torch.dtype,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(R (bins+1)×hgt, Q (bins+1)×wid): `_bin_matrix` plus a last row of 1/hgt (1/wid), for `pool_and_mean`.

    Cached because building them is ~15 tiny ops (≈0.2 ms on CPU, a sixth of the old forward). Built outside
    inference mode so that an entry first made under `torch.inference_mode` can still be saved for backward.
    """
    with torch.inference_mode(False):
        like = torch.empty(0, dtype=dtype, device=device)
        rows = torch.cat([_bin_matrix(hgt, bins, like), like.new_full((1, hgt), 1.0 / hgt)])
        cols = torch.cat([_bin_matrix(wid, bins, like), like.new_full((1, wid), 1.0 / wid)])
    return rows, cols


def _bin_matrix(size: int | torch.Tensor, bins: int, like: torch.Tensor) -> torch.Tensor:
    """bins × size matrix whose row i averages the input positions of adaptive-pooling bin i."""
    positions = torch.arange(size, device=like.device)
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")
    inside = (positions.unsqueeze(0) >= start.unsqueeze(1)) & (positions.unsqueeze(0) < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def adaptive_avg_pool2d_by_matrices(x: torch.Tensor, output_size: int) -> torch.Tensor:
    """Same result as `F.adaptive_avg_pool2d(x, output_size)` for N×C×H×W x and an integer square output."""
    rows = _bin_matrix(x.shape[-2], output_size, x)
    cols = _bin_matrix(x.shape[-1], output_size, x)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of the correlation window (see `depthwise_correlation`)."""
    before = (kernel_size - 1) // 2
    return before, (before if stride == 2 else kernel_size // 2)


def _set_weights(filters: torch.Tensor, n: int, c: int, k: int, sets: int) -> list[torch.Tensor]:
    """Per filter set q, the (N·C)×1×k×k weight of the grouped convolution (shared filters are expanded)."""
    if filters.shape[1] == sets:
        return [filters[:, q:q + 1].expand(n, c, k, k).reshape(n * c, 1, k, k) for q in range(sets)]
    per_channel = filters.reshape(n, sets, c, k, k)
    return [per_channel[:, q].reshape(n * c, 1, k, k) for q in range(sets)]


def _grouped_input(x: torch.Tensor, kernel_size: int, stride: int) -> tuple[torch.Tensor, int]:
    """x as the 1×(N·C)×H'×W' input of the grouped convolution, and the convolution's own padding.

    Stride 2 pads symmetrically inside the convolution; stride 1 (asymmetric window for even k) pads here.
    """
    n, c, hgt, wid = x.shape
    flat = x.reshape(1, n * c, hgt, wid)
    before, after = _padding(kernel_size, stride)
    if stride == 2:
        return flat, before
    return F.pad(flat, (before, after, before, after)), 0


class _CorrelationFunction(torch.autograd.Function):
    """The grouped-convolution correlation with a backward that computes only what is needed, cheaply.

    Pure-PyTorch path: eager CPU calls take the fused op instead where it is built and enabled.

    Forward: one grouped convolution (groups = N·C) per filter set, as the plain eager path.
    Backward: grad_x = Σ_q the convolutions' input gradient (oneDNN's depthwise backward-data, fast);
    grad of shared filters: per image, the weight gradient of a *dense* convolution that treats the C channels
    as a batch of single-channel images (C×1×H×W input, q×1×k×k weight) — it reduces over channels and space
    in one oneDNN call. The grouped convolution's own weight gradient (one k×k gradient per (n, c), then a sum
    over c) was 5–7× slower on CPU and dominated A2U's backward. Channel-wise filters use the grouped weight
    gradient (no reduction over channels there). Results equal autograd's up to float summation order.
    """

    @staticmethod
    def forward(ctx, x, filters, kernel_size, sets, stride):  # type: ignore[override]
        n, c = x.shape[:2]
        inp, padding = _grouped_input(x, kernel_size, stride)
        weights = _set_weights(filters, n, c, kernel_size, sets)
        outs = [F.conv2d(inp, weight, stride=stride, padding=padding, groups=n * c) for weight in weights]
        ctx.save_for_backward(x, filters)
        ctx.config = (kernel_size, sets, stride)
        h, w = outs[0].shape[-2:]
        return tuple(out.view(n, c, h, w) for out in outs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):  # type: ignore[override]
        with record_function("a2u::correlation"):
            return _CorrelationFunction._backward(ctx, grads)

    @staticmethod
    def _backward(ctx, grads):  # noqa: ANN001, ANN205 - the body of backward
        x, filters = ctx.saved_tensors
        kernel_size, sets, stride = ctx.config
        n, c, hgt, wid = x.shape
        inp, padding = _grouped_input(x, kernel_size, stride)
        conv_args = ([stride, stride], [padding, padding], [1, 1], False, [0, 0])
        grads = [g.contiguous() for g in grads]
        h, w = grads[0].shape[-2:]
        grad_x = grad_f = None
        weights = _set_weights(filters, n, c, kernel_size, sets)
        if ctx.needs_input_grad[0]:
            for g, weight in zip(grads, weights):
                part = torch.ops.aten.convolution_backward(g.view(1, n * c, h, w), inp, weight, None, *conv_args,
                                                           n * c, [True, False, False])[0]
                grad_x = part if grad_x is None else grad_x.add_(part)
            if stride == 1:
                before = _padding(kernel_size, stride)[0]
                grad_x = grad_x[..., before:before + hgt, before:before + wid]
            grad_x = grad_x.reshape(n, c, hgt, wid)
        if ctx.needs_input_grad[1]:
            if filters.shape[1] == sets:        # shared: per image, channels as the batch of a dense conv
                stacked = torch.stack(grads, 2)                                   # N×C×q×h×w
                per_image = inp.view(n, c, 1, *inp.shape[-2:])
                grad_f = torch.stack([torch.ops.aten.convolution_backward(
                    stacked[b], per_image[b], filters[b].unsqueeze(1), None, *conv_args, 1,
                    [False, True, False])[1] for b in range(n)]).view_as(filters)
            else:                               # channel-wise: the grouped weight gradient, no reduction
                parts = [torch.ops.aten.convolution_backward(g.view(1, n * c, h, w), inp, weight, None, *conv_args,
                                                             n * c, [False, True, False])[1].view(n, c, kernel_size,
                                                                                                  kernel_size)
                         for g, weight in zip(grads, weights)]
                grad_f = torch.stack(parts, 1).view_as(filters)
        return grad_x, grad_f, None, None, None


def _correlations_eager(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, sets: int,
                        stride: int) -> tuple[torch.Tensor, ...]:
    """The same maths with autograd's own convolution backward (tracing, autocast, mixed dtypes)."""
    n, c = x.shape[:2]
    inp, padding = _grouped_input(x, kernel_size, stride)
    outs = [F.conv2d(inp, weight, stride=stride, padding=padding, groups=n * c)
            for weight in _set_weights(filters, n, c, kernel_size, sets)]
    return tuple(out.view(n, c, *out.shape[-2:]) for out in outs)


def depthwise_correlations(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, sets: int,
                           stride: int) -> tuple[torch.Tensor, ...]:
    """`sets` correlations of x with per-image filters, one N×C×H/stride×W/stride tensor per filter set.

    Args:
        x (Tensor): N×C×H×W (H, W even for stride 2).
        filters (Tensor): N×q×k×k (shared by the channels) or N×(q·C)×k×k (channel-wise, set-major), q = `sets`.
        kernel_size (int): k. stride (int): 2 (A2D/A2U paired) or 1 (self-guided A2U).

    The generator passes u and v of every rank as one call (q = 2d), so x is read and saved once. On CPU (eager,
    float32/float64, one dtype, not autocast) the fused C++ op `a2u::correlate` runs, with and without grad
    (`fused_cpu.use_fused_correlation`); elsewhere, or under `fused_cpu.fallback()` / `A2U_FUSED_CPU=0`,
    `_CorrelationFunction` (grad) or the plain grouped convolution (no grad). Under tracing / export /
    torch.compile, autocast or mixed dtypes the plain grouped convolution differentiated by autograd is used
    (identical forward ops, so FLOP counts and exports see the same graph).
    """
    if is_exporting():
        out = depthwise_correlation_plain(x, filters, kernel_size, sets, stride)
        return tuple(out.view(x.shape[0], sets, *out.shape[1:]).unbind(1))
    plain = (torch.is_autocast_enabled(x.device.type) or x.dtype != filters.dtype
             or not torch.is_grad_enabled() or not (x.requires_grad or filters.requires_grad))
    if is_tracing():
        return _correlations_eager(x, filters, kernel_size, sets, stride)
    with record_function("a2u::correlation"):
        if fused_cpu.use_fused_correlation(x, filters):   # one op: forward, and its fused backward under autograd
            return fused_cpu.correlate(x, filters, kernel_size, sets, stride).unbind(0)
        if plain:
            return _correlations_eager(x, filters, kernel_size, sets, stride)
        return _CorrelationFunction.apply(x, filters, kernel_size, sets, stride)


def depthwise_correlation(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, rank: int,
                          stride: int) -> torch.Tensor:
    """Per-image depthwise correlation: x N×C×H×W, filters N×(d or d·C)×k×k -> (N·d)×C×H/stride×W/stride.

    Output (n, q, c, i, j) = Σ_{dy,dx<k} f[n, q(, c), dy, dx] · x_pad[n, c, stride·i + dy, stride·j + dx],
    x padded by ⌊(k−1)/2⌋ before and ⌊(k−1)/2⌋ (stride 2) or ⌊k/2⌋ (stride 1) after: the window of output i
    covers input rows stride·i − ⌊(k−1)/2⌋ … stride·i + ⌊k/2⌋. N×d×k×k filters are shared by all channels.
    """
    if is_exporting():
        return depthwise_correlation_plain(x, filters, kernel_size, rank, stride)
    outs = depthwise_correlations(x, filters, kernel_size, rank, stride)
    return torch.stack(outs, 1).reshape(x.shape[0] * rank, *outs[0].shape[1:])


def depthwise_correlation_plain(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, rank: int,
                                stride: int) -> torch.Tensor:
    """Export-friendly twin of `depthwise_correlation` (sum of strided views × filter taps)."""
    n, c = x.shape[0], x.shape[1]
    k, d = kernel_size, rank
    before = (k - 1) // 2
    after = before if stride == 2 else k // 2
    padded = F.pad(x, (before, after, before, after))
    out_h = (x.shape[2] + before + after - k) // stride + 1
    out_w = (x.shape[3] + before + after - k) // stride + 1
    taps = filters.reshape(n, d, -1, k, k)
    out = None
    for dy in range(k):
        for dx in range(k):
            view = padded[:, :, dy::stride, dx::stride][:, :, :out_h, :out_w].unsqueeze(1)
            term = view * taps[:, :, :, dy, dx].unsqueeze(-1).unsqueeze(-1)
            out = term if out is None else out + term
    return out.reshape(n * d, c, out_h, out_w)
