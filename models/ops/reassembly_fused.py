"""Memory-lean reassembly kernels for A2U / A2D, with an explicit backward (pure PyTorch, CPU and CUDA).

Instead of materialising every window (unfold: s² copies of the input, then a nearest repeat), these loop over
the s² (resp. k²) window *offsets* (never over the batch) and accumulate `kernel_slice * shifted_view` with
in-place `addcmul_`:

- upsampling accumulates into the r² sub-pixel **phases** of the output, stored phase-major as a
  N×G×(C/G)×r²×h×w buffer (= `pixel_unshuffle` layout of the output), turned into N×C×rh×rw by one
  `pixel_shuffle`; the kernel for phase (a, b) of offset e is `pixel_unshuffle(kernels)`'s matching channel;
- downsampling reads the input through its four stride-2 phases `x[..., p::2, q::2]`, each copied once into a
  contiguous output-sized buffer and used by the k²/4 offsets that fall on it.

Out-of-map window terms are skipped by clipping each offset's valid output range (zero padding, no
renormalisation: CARAFE-naive semantics). Extra memory beyond the output stays below ~1× the output in the
forward pass; the backward pass reduces over channels with `torch.linalg.vecdot` (a fused multiply-sum).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _clipped_range(shift: int, size: int) -> tuple[slice, slice] | None:
    """Output slice and matching input slice for `out[i] += f(inp[i + shift])` with 0 ≤ i, i+shift < size."""
    start, stop = max(0, -shift), min(size, size - shift)
    if start >= stop:
        return None
    return slice(start, stop), slice(start + shift, stop + shift)


def up_offsets(kernel_size: int) -> list[tuple[int, int, int]]:
    """(entry e, row shift a, column shift b) of an odd s×s window centred on the source pixel."""
    radius = (kernel_size - 1) // 2
    return [(dy * kernel_size + dx, dy - radius, dx - radius)
            for dy in range(kernel_size) for dx in range(kernel_size)]


def down_offsets(kernel_size: int) -> list[tuple[int, int, int, int, int]]:
    """(entry e, row phase p, row shift m, column phase q, column shift n) of the even k×k A2D window.

    Window row dy of output row i reads input row 2i − (k−2)/2 + dy = 2(i + m) + p.
    """
    before = (kernel_size - 2) // 2
    out = []
    for dy in range(kernel_size):
        for dx in range(kernel_size):
            m, p = divmod(dy - before, 2)
            n, q = divmod(dx - before, 2)
            out.append((dy * kernel_size + dx, p, m, q, n))
    return out


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def up_forward(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
               scale_factor: int) -> torch.Tensor:
    """x N×C×h×w, kernels N×(G·s²)×rh×rw (same dtype) -> N×C×rh×rw."""
    n, c, h, w = x.shape
    r2 = scale_factor * scale_factor
    xg = x.view(n, group_size, c // group_size, h, w)
    phase_kernels = F.pixel_unshuffle(kernels, scale_factor).view(n, group_size, kernel_size ** 2, r2, h, w)
    buf = torch.zeros((n, c * r2, h, w), dtype=x.dtype, device=x.device).contiguous(memory_format=_memory_format(x))
    buf_g = buf.view(n, group_size, c // group_size, r2, h, w)
    for e, a, b in up_offsets(kernel_size):
        rows, cols = _clipped_range(a, h), _clipped_range(b, w)
        if rows is None or cols is None:
            continue
        (oi, xi), (oj, xj) = rows, cols
        buf_g[..., oi, oj].addcmul_(xg[..., xi, xj].unsqueeze(3), phase_kernels[:, :, e, :, oi, oj].unsqueeze(2))
    return F.pixel_shuffle(buf, scale_factor)


def up_backward(grad_out: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                group_size: int, scale_factor: int, need_x: bool, need_kernels: bool
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of `up_forward` wrt x (N×C×h×w) and kernels (N×(G·s²)×rh×rw)."""
    n, c, h, w = x.shape
    r2 = scale_factor * scale_factor
    cg = c // group_size
    xg = x.view(n, group_size, cg, h, w)
    grad_phases = F.pixel_unshuffle(grad_out.to(x.dtype), scale_factor).view(n, group_size, cg, r2, h, w)
    phase_kernels = F.pixel_unshuffle(kernels, scale_factor).view(n, group_size, kernel_size ** 2, r2, h, w)
    grad_x = torch.zeros_like(xg) if need_x else None
    grad_k = kernels.new_zeros(n, group_size, kernel_size ** 2, r2, h, w) if need_kernels else None
    for e, a, b in up_offsets(kernel_size):
        rows, cols = _clipped_range(a, h), _clipped_range(b, w)
        if rows is None or cols is None:
            continue
        (oi, xi), (oj, xj) = rows, cols
        g = grad_phases[..., oi, oj]
        if grad_x is not None:
            target = grad_x[..., xi, xj]
            for phase in range(r2):
                target.addcmul_(g[:, :, :, phase], phase_kernels[:, :, e, phase, oi, oj].unsqueeze(2))
        if grad_k is not None:
            grad_k[:, :, e, :, oi, oj] = torch.linalg.vecdot(g, xg[..., xi, xj].unsqueeze(3), dim=2)
    if grad_x is not None:
        grad_x = grad_x.view(n, c, h, w)
    if grad_k is not None:
        grad_k = F.pixel_shuffle(grad_k.view(n, -1, h, w), scale_factor)
    return grad_x, grad_k


def _offsets_by_phase(kernel_size: int) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """`down_offsets` grouped by input phase (p, q): {(p, q): [(e, m, n), ...]}."""
    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for e, p, m, q, n in down_offsets(kernel_size):
        groups.setdefault((p, q), []).append((e, m, n))
    return groups


def down_forward(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> torch.Tensor:
    """x N×C×H×W (H, W even), kernels N×(G·k²)×H/2×W/2 (same dtype) -> N×C×H/2×W/2.

    Each stride-2 phase of x is copied once into a contiguous output-sized buffer (contiguous reads are much
    faster than stride-2 ones), then used by the k²/4 window offsets that read it.
    """
    n, c, hh, ww = x.shape
    h, w = hh // 2, ww // 2
    phases = x.view(n, group_size, c // group_size, h, 2, w, 2)
    kg = kernels.view(n, group_size, kernel_size ** 2, h, w)
    out = torch.zeros((n, c, h, w), dtype=x.dtype, device=x.device).contiguous(memory_format=_memory_format(x))
    out_g = out.view(n, group_size, c // group_size, h, w)
    for (p, q), offsets in _offsets_by_phase(kernel_size).items():
        phase = phases[:, :, :, :, p, :, q].contiguous()
        for e, m, s in offsets:
            rows, cols = _clipped_range(m, h), _clipped_range(s, w)
            if rows is None or cols is None:
                continue
            (oi, xi), (oj, xj) = rows, cols
            out_g[..., oi, oj].addcmul_(phase[..., xi, xj], kg[:, :, e, oi, oj].unsqueeze(2))
    return out


def down_backward(grad_out: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                  group_size: int, need_x: bool, need_kernels: bool
                  ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of `down_forward` wrt x (N×C×H×W) and kernels (N×(G·k²)×H/2×W/2)."""
    n, c, hh, ww = x.shape
    h, w = hh // 2, ww // 2
    cg = c // group_size
    phases = x.view(n, group_size, cg, h, 2, w, 2)
    kg = kernels.view(n, group_size, kernel_size ** 2, h, w)
    grad = grad_out.to(x.dtype).reshape(n, group_size, cg, h, w)
    grad_x = x.new_empty(n, group_size, cg, h, 2, w, 2) if need_x else None
    grad_k = kernels.new_zeros(n, group_size, kernel_size ** 2, h, w) if need_kernels else None
    for (p, q), offsets in _offsets_by_phase(kernel_size).items():
        phase = phases[:, :, :, :, p, :, q].contiguous() if grad_k is not None else None
        grad_phase = torch.zeros_like(grad) if grad_x is not None else None
        for e, m, s in offsets:
            rows, cols = _clipped_range(m, h), _clipped_range(s, w)
            if rows is None or cols is None:
                continue
            (oi, xi), (oj, xj) = rows, cols
            g = grad[..., oi, oj]
            if grad_phase is not None:
                grad_phase[..., xi, xj].addcmul_(g, kg[:, :, e, oi, oj].unsqueeze(2))
            if phase is not None:
                grad_k[:, :, e, oi, oj] = torch.linalg.vecdot(g, phase[..., xi, xj], dim=2)
        if grad_x is not None:
            grad_x[:, :, :, :, p, :, q] = grad_phase
    if grad_x is not None:
        grad_x = grad_x.view(n, c, hh, ww)
    if grad_k is not None:
        grad_k = grad_k.view(n, -1, h, w)
    return grad_x, grad_k


class A2UUpsampleFunction(torch.autograd.Function):
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
        grad_x, grad_k = up_backward(grad_out, x, kernels, *ctx.config,
                                     need_x=ctx.needs_input_grad[0], need_kernels=ctx.needs_input_grad[1])
        return grad_x, grad_k, None, None, None


class A2DDownsampleFunction(torch.autograd.Function):
    """Autograd wrapper of `down_forward` / `down_backward`: saves only x and the kernels."""

    @staticmethod
    def forward(ctx, x, kernels, kernel_size, group_size):  # type: ignore[override]
        ctx.save_for_backward(x, kernels)
        ctx.config = (kernel_size, group_size)
        return down_forward(x, kernels, kernel_size, group_size)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        x, kernels = ctx.saved_tensors
        grad_x, grad_k = down_backward(grad_out, x, kernels, *ctx.config,
                                       need_x=ctx.needs_input_grad[0], need_kernels=ctx.needs_input_grad[1])
        return grad_x, grad_k, None, None
