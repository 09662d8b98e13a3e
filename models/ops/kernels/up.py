"""Upsampling reassembly (spec 2.3): the CARAFE-naive op that A2U and CARAFE share, pure PyTorch.

    out[c, i, j] = Σ_{a,b} K[g·s² + (a+R)·s + (b+R), i, j] · x[c, ⌊i/r⌋+a, ⌊j/r⌋+b],   R = (s−1)/2,

with g = ⌊c / (C/G)⌋ and out-of-map terms skipped (zero padding, no renormalisation). `reassemble_up` is the
neutral name (`CARAFETorch` uses it); `a2u_upsample` is the same function under the paper's name, for A2U code.

Execution paths giving the same numbers up to float rounding (`reassemble_up` picks one):
- CPU, eager, when built (`fused_cpu`): the fused C++ op `a2u::reassemble_up` (forward and a one-pass backward);
  `A2U_FUSED_CPU=0` or `fused_cpu.fallback()` forces the pure-PyTorch paths below;
- gradients needed (eager): `ReassembleUpFunction` (blocked forward, explicit backward saving only the inputs);
- no gradients needed (eager): `up_forward`, the same blocked forward, called directly;
- tracing / scripting / ONNX export / torch.export / torch.compile: `reassemble_up_plain`, an out-of-place sum
  over the same offsets that every tracer understands.
`reassemble_up_unfold` is the obvious unfold + nearest-repeat formulation, kept as a benchmark reference.

The blocked kernel: x is first repeated r× along columns (`x_r`: N×C×h×rw, 0.5× the output for r=2). Then the
output viewed as N×C×h×r×rw reads, for offset (a, b), `x_r[..., i+a, None, J + r·b]` (broadcast over the r row
phases, no copy) times `K[:, e]` viewed the same way (broadcast over channels): s² in-place `addcmul_` passes,
run block by block (`common.blocks`, ~L2-sized) so they hit the cache. The unshifted offset covers every output
and is written first with `mul(out=)`, so no accumulator is zero-filled. Backward: grad_x is gathered per band
(g rows shifted by −a, clipped) into a column-repeated temp, then the r columns are summed;
grad_K[e] = Σ_c g · x_r-shift (one product + one channel reduction per offset).

Dtypes: under autocast both operands are cast to the autocast dtype (as a convolution would be); otherwise to
their promoted dtype. Kernels normalised in float32 under autocast are thus reassembled in fp16/bf16.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.profiler import record_function

from models.ops.kernels import common, fused_cpu
from models.ops.kernels import triton as triton_kernels
from models.ops.kernels.common import (Workspace, blocks, check_inputs, common_dtype, is_tracing, local, restore_format,
                                       shifted_range, unshifted_first)
from models.ops.kernels.small import up_backward_small, up_forward_small

__all__ = ["reassemble_up", "a2u_upsample", "reassemble_up_plain", "reassemble_up_unfold", "up_offsets",
           "up_forward", "up_backward", "ReassembleUpFunction"]


def up_offsets(kernel_size: int) -> list[tuple[int, int, int]]:
    """(entry e, row shift a, column shift b) of an odd s×s window centred on the source pixel."""
    radius = (kernel_size - 1) // 2
    return [(dy * kernel_size + dx, dy - radius, dx - radius)
            for dy in range(kernel_size) for dx in range(kernel_size)]


def _check_up_args(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                   scale_factor: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"reassemble_up: kernel_size must be a positive odd int, got {kernel_size!r}")
    if not isinstance(scale_factor, int) or scale_factor < 1:
        raise ValueError(f"reassemble_up: scale_factor must be a positive int, got {scale_factor!r}")
    h, w = (x.shape[-2], x.shape[-1]) if isinstance(x, torch.Tensor) and x.dim() == 4 else (0, 0)
    check_inputs("reassemble_up", x, kernels, kernel_size, group_size, (h * scale_factor, w * scale_factor))


def reassemble_up(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1,
                  scale_factor: int = 2) -> torch.Tensor:
    """Reassemble x with per-pixel upsampling kernels (CARAFE-naive semantics).

    Args:
        x (Tensor): low-resolution feature, (N, C, h, w); C divisible by `group_size`.
        kernels (Tensor): (N, G·s², r·h, r·w), channel g·s² + e is window entry e of group g (row-major).
        kernel_size (int): s, odd.
        group_size (int): G, kernel groups. Default: 1.
        scale_factor (int): r. Default: 2.

    Returns:
        Tensor: (N, C, r·h, r·w).
    """
    _check_up_args(x, kernels, kernel_size, group_size, scale_factor)
    dtype = common_dtype(x, kernels)
    x, kernels = x.to(dtype), kernels.to(dtype)
    if is_tracing():
        return reassemble_up_plain(x, kernels, kernel_size, group_size, scale_factor)
    with record_function("a2u::reassembly_up"):
        if fused_cpu.use_fused(x):   # the fused C++ op (CPU, eager); its autograd runs the fused backward
            return restore_format(fused_cpu.reassemble_up(x, kernels, kernel_size, group_size, scale_factor), x)
        if triton_kernels.use_triton(x):   # the Triton op (CUDA, eager, triton importable)
            return restore_format(triton_kernels.reassemble_up(x, kernels, kernel_size, group_size, scale_factor), x)
        if torch.is_grad_enabled() and (x.requires_grad or kernels.requires_grad):
            return ReassembleUpFunction.apply(x, kernels, kernel_size, group_size, scale_factor)
        return up_forward(x, kernels, kernel_size, group_size, scale_factor)


#: The paper's name for the op (A2U's upsampling is exactly this reassembly).
a2u_upsample = reassemble_up


def reassemble_up_plain(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1,
                        scale_factor: int = 2) -> torch.Tensor:
    """Out-of-place twin of `reassemble_up` (zero pad, sum of shifted views × phase kernels): export-friendly."""
    n, c, h, w = x.shape
    radius = (kernel_size - 1) // 2
    r2 = scale_factor * scale_factor
    padded = F.pad(x, (radius, radius, radius, radius)).reshape(n, group_size, c // group_size, 1,
                                                                h + 2 * radius, w + 2 * radius)
    phase_kernels = F.pixel_unshuffle(kernels, scale_factor).reshape(n, group_size, 1, kernel_size ** 2, r2, h, w)
    out = None
    for e, a, b in up_offsets(kernel_size):
        term = padded[..., radius + a:radius + a + h, radius + b:radius + b + w] * phase_kernels[:, :, :, e]
        out = term if out is None else out + term
    return F.pixel_shuffle(out.reshape(n, c * r2, h, w), scale_factor)


def reassemble_up_unfold(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1,
                         scale_factor: int = 2) -> torch.Tensor:
    """Reference: unfold s×s windows, repeat them r× (nearest), weight by the kernels, sum (memory-hungry)."""
    _check_up_args(x, kernels, kernel_size, group_size, scale_factor)
    n, c, h, w = x.shape
    windows = F.unfold(x, kernel_size, padding=kernel_size // 2).view(n, group_size, c // group_size,
                                                                       kernel_size ** 2, h, w)
    windows = windows.repeat_interleave(scale_factor, dim=4).repeat_interleave(scale_factor, dim=5)
    kg = kernels.view(n, group_size, 1, kernel_size ** 2, h * scale_factor, w * scale_factor)
    return (windows * kg).sum(dim=3).view(n, c, h * scale_factor, w * scale_factor)


def _repeat_columns(x: torch.Tensor, r: int) -> torch.Tensor:
    """N×C×h×w -> N×C×h×(r·w) with every column repeated r times (nearest), via r strided copies."""
    out = x.new_empty(*x.shape, r)
    for phase in range(r):
        out[..., phase] = x
    return out.view(*x.shape[:-1], x.shape[-1] * r)


def up_forward(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
               scale_factor: int) -> torch.Tensor:
    """x N×C×h×w, kernels N×(G·s²)×rh×rw (same dtype) -> N×C×rh×rw."""
    like, x, kernels = x, x.contiguous(), kernels.contiguous()
    n, c, h, w = x.shape
    if common.use_small_path(x, h * w):
        return restore_format(up_forward_small(x, kernels, kernel_size, group_size, scale_factor), like)
    r, cg = scale_factor, c // group_size
    x_r = _repeat_columns(x, r).view(n, group_size, cg, h, r * w)
    kern = kernels.view(n, group_size, kernel_size ** 2, 1, h, r, r * w)
    out = x.new_empty(n, c, r * h, r * w)
    out_v = out.view(n, group_size, cg, h, r, r * w)
    offsets = unshifted_first(up_offsets(kernel_size), (1, 2))
    for bs, rows in blocks(n, h, c * r * r * w * x.element_size(), device_type=x.device.type):
        x_b, out_b, kern_b = x_r[bs].unsqueeze(4), out_v[bs], kern[bs].unbind(2)   # hoisted views
        for e, a, b in offsets:
            row_pair, col_pair = shifted_range(a, h, rows), shifted_range(r * b, r * w)
            if row_pair is None or col_pair is None:
                continue
            (oi, xi), (oj, xj) = row_pair, col_pair
            src, weight, target = x_b[..., xi, :, xj], kern_b[e][..., oi, :, oj], out_b[..., oi, :, oj]
            if a == 0 and b == 0:
                torch.mul(src, weight, out=target)
            else:
                target.addcmul_(src, weight)
    return restore_format(out, like)


def up_backward(grad_out: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                group_size: int, scale_factor: int, need_x: bool, need_kernels: bool
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of `up_forward` wrt x (N×C×h×w) and kernels (N×(G·s²)×rh×rw).

    Blocks are bands of low-resolution rows [i0, i1): grad_x rows of the band gather g at rows i − a (clipped),
    grad_K rows of the band need x_r at rows i + a. Both read neighbouring rows in place (no halo copies).
    """
    like = x
    x, kernels = x.contiguous(), kernels.contiguous()
    grad = grad_out.to(x.dtype).contiguous()
    n, c, h, w = x.shape
    if common.use_small_path(x, h * w):
        grad_x, grad_k = up_backward_small(grad, x, kernels, kernel_size, group_size, scale_factor, need_x,
                                           need_kernels)
        return (restore_format(grad_x, like) if grad_x is not None else None), grad_k
    r, cg, s2 = scale_factor, c // group_size, kernel_size ** 2
    kern = kernels.view(n, group_size, s2, 1, h, r, r * w)
    g = grad.view(n, group_size, cg, h, r, r * w)
    x_r = _repeat_columns(x, r).view(n, group_size, cg, h, 1, r * w) if need_kernels else None
    grad_x = x.new_empty(n, c, h, w) if need_x else None
    grad_k = kernels.new_empty(n, group_size * s2, r * h, r * w) if need_kernels else None
    gx_v = grad_x.view(n, group_size, cg, h, w) if grad_x is not None else None
    gk_v = grad_k.view(n, group_size, s2, h, r, r * w) if grad_k is not None else None
    offsets = unshifted_first(up_offsets(kernel_size), (1, 2))
    workspace = Workspace(x)
    for bs, rows in blocks(n, h, c * r * r * w * x.element_size(), device_type=x.device.type):
        band = rows.stop - rows.start
        nb = bs.stop - bs.start
        gather = workspace.get("gather", (nb, group_size, cg, band, r * w)) if gx_v is not None else None
        product = workspace.get("product", (nb, group_size, cg, band, r, r * w)) if gk_v is not None else None
        g_b, g_phases = g[bs], g[bs].unbind(4)                                     # hoisted views
        kern_phases = [k.unbind(4) for k in kern[bs].unbind(2)]                    # [e][phase]: nb×G×1×h×rw
        for e, a, b in offsets:
            if gather is not None:   # grad_x_r[i, J] += Σ_p K[e, i−a, p, J−rb] · g[i−a, p, J−rb]
                row_pair, col_pair = shifted_range(-a, h, rows), shifted_range(-r * b, r * w)
                if row_pair is not None and col_pair is not None:
                    (xi, gi), (xj, gj) = row_pair, col_pair
                    target = gather[..., local(xi, rows.start), xj]
                    for phase in range(r):
                        src, weight = g_phases[phase][..., gi, gj], kern_phases[e][phase][..., gi, gj]
                        if a == 0 and b == 0 and phase == 0:
                            torch.mul(src, weight, out=target)
                        else:
                            target.addcmul_(src, weight)
            if product is not None:  # grad_K[e, i, p, J] = Σ_c g[c, i, p, J] · x_r[c, i+a, J+rb]
                row_pair, col_pair = shifted_range(a, h, rows), shifted_range(r * b, r * w)
                target = gk_v[bs, :, e, rows]
                if row_pair is None or col_pair is None:
                    target.zero_()
                    continue
                (oi, xi), (oj, xj) = row_pair, col_pair
                if (oi.stop - oi.start) < band or (oj.stop - oj.start) < r * w:
                    target.zero_()   # border outputs whose window entry e falls outside the map
                part = product[..., local(oi, rows.start), :, oj]
                torch.mul(g_b[..., oi, :, oj], x_r[bs, :, :, xi, :, xj], out=part)
                torch.sum(part, dim=2, out=target[..., local(oi, rows.start), :, oj])
        if gather is not None:
            torch.sum(gather.view(*gather.shape[:-1], w, r), dim=-1, out=gx_v[bs, :, :, rows])
    if grad_x is not None:
        grad_x = restore_format(grad_x, like)
    return grad_x, grad_k


class ReassembleUpFunction(torch.autograd.Function):
    """Autograd wrapper of `up_forward` / `up_backward`: saves only x and the kernels."""

    @staticmethod
    def forward(ctx, x, kernels, kernel_size, group_size, scale_factor):  # type: ignore[override]
        ctx.save_for_backward(x, kernels)
        ctx.config = (kernel_size, group_size, scale_factor)
        return up_forward(x, kernels, kernel_size, group_size, scale_factor)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        x, kernels = ctx.saved_tensors
        with record_function("a2u::reassembly_up"):
            grad_x, grad_k = up_backward(grad_out, x, kernels, *ctx.config,
                                         need_x=ctx.needs_input_grad[0], need_kernels=ctx.needs_input_grad[1])
        return grad_x, grad_k, None, None, None
