"""A2D downsampling reassembly (spec 2.4): an even k×k window with stride 2, pure PyTorch.

    out[c, i, j] = Σ_{dy,dx<k} K[g·k² + dy·k + dx, i, j] · x[c, 2i−(k−2)/2+dy, 2j−(k−2)/2+dx],

with g = ⌊c / (C/G)⌋ and out-of-map terms skipped. For k = 6 the window covers rows 2i−2 … 2i+3 (asymmetric, as
the official CUDA op). Execution paths as in `up.py`: the fused C++ op `a2u::reassemble_down` on CPU when built
(`fused_cpu`), `A2DDownsampleFunction` (eager, gradients),
`down_forward` (eager, no gradients), `a2d_downsample_plain` (tracing/export); `a2d_downsample_unfold` is the
benchmark reference.

The blocked kernel: per block, each stride-2 phase of the rows it reads (plus a halo) is copied once into a flat
temp with zero pad columns between rows (`_padded_rows`); a window shift (m, s) is then a flat offset, so each of
the k² offsets is one `addcmul_` over one long contiguous run (short rows of clipped 2-D views were 5–10× slower
per element). Backward uses the same layout: grad_K[e] = Σ_c g · shifted phase, and the four grad phases of the
band gather K·g at the mirrored shifts, then are written back with one copy. Extra memory: per-block temps,
bounded by a quarter of the output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.profiler import record_function

from models.ops.kernels import fused_cpu
from models.ops.kernels import triton as triton_kernels
from models.ops.kernels.common import (Workspace, blocks, check_inputs, common_dtype, is_tracing, restore_format,
                                       unshifted_first)

__all__ = ["a2d_downsample", "a2d_downsample_plain", "a2d_downsample_unfold", "down_offsets", "down_forward",
           "down_backward", "A2DDownsampleFunction"]


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


def _check_down_args(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 2 or kernel_size % 2:
        raise ValueError(f"a2d_downsample: kernel_size must be a positive even int, got {kernel_size!r}")
    if isinstance(x, torch.Tensor) and x.dim() == 4 and (x.shape[-2] % 2 or x.shape[-1] % 2):
        raise ValueError(f"a2d_downsample: x must have even height and width, got {tuple(x.shape[-2:])}")
    h, w = (x.shape[-2] // 2, x.shape[-1] // 2) if isinstance(x, torch.Tensor) and x.dim() == 4 else (0, 0)
    check_inputs("a2d_downsample", x, kernels, kernel_size, group_size, (h, w))


def a2d_downsample(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1) -> torch.Tensor:
    """Affinity-aware ×2 downsampling with an asymmetric even window.

    Args:
        x (Tensor): high-resolution feature, (N, C, H, W), H and W even.
        kernels (Tensor): (N, G·k², H/2, W/2), channel g·k² + dy·k + dx.
        kernel_size (int): k, even; the window of output (i, j) covers rows 2i−(k−2)/2 … 2i+k/2.
        group_size (int): G. Default: 1.

    Returns:
        Tensor: (N, C, H/2, W/2).
    """
    _check_down_args(x, kernels, kernel_size, group_size)
    dtype = common_dtype(x, kernels)
    x, kernels = x.to(dtype), kernels.to(dtype)
    if is_tracing():
        return a2d_downsample_plain(x, kernels, kernel_size, group_size)
    with record_function("a2u::reassembly_down"):
        if fused_cpu.use_fused(x):   # the fused C++ op (CPU, eager); its autograd runs the fused backward
            return restore_format(fused_cpu.reassemble_down(x, kernels, kernel_size, group_size), x)
        if triton_kernels.use_triton(x):   # the Triton op (CUDA, eager, triton importable)
            return restore_format(triton_kernels.reassemble_down(x, kernels, kernel_size, group_size), x)
        if torch.is_grad_enabled() and (x.requires_grad or kernels.requires_grad):
            return A2DDownsampleFunction.apply(x, kernels, kernel_size, group_size)
        return down_forward(x, kernels, kernel_size, group_size)


def a2d_downsample_plain(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                         group_size: int = 1) -> torch.Tensor:
    """Out-of-place twin of `a2d_downsample` (pad, space-to-depth, sum of shifted phase views): export-friendly."""
    n, c, hh, ww = x.shape
    h, w = hh // 2, ww // 2
    before = (kernel_size - 2) // 2
    lead, trail = (before + 1) // 2, kernel_size // 4  # low-res rows of padding the window reaches before / after
    padded = F.pad(x, (2 * lead, 2 * trail, 2 * lead, 2 * trail))
    phases = F.pixel_unshuffle(padded, 2).reshape(n, group_size, c // group_size, 4, h + lead + trail,
                                                  w + lead + trail)
    kg = kernels.reshape(n, group_size, 1, kernel_size ** 2, h, w)
    out = None
    for e, p, m, q, s in down_offsets(kernel_size):
        view = phases[:, :, :, 2 * p + q, lead + m:lead + m + h, lead + s:lead + s + w]
        term = view * kg[:, :, :, e]
        out = term if out is None else out + term
    return out.reshape(n, c, h, w)


def a2d_downsample_unfold(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                          group_size: int = 1) -> torch.Tensor:
    """Reference: pad (k−2)/2 before and k/2 after, unfold k×k with stride 2, weight by the kernels, sum."""
    _check_down_args(x, kernels, kernel_size, group_size)
    n, c, hh, ww = x.shape
    before, after = (kernel_size - 2) // 2, kernel_size // 2
    padded = F.pad(x, (before, after, before, after))
    windows = F.unfold(padded, kernel_size, stride=2).view(n, group_size, c // group_size, kernel_size ** 2,
                                                           hh // 2, ww // 2)
    kg = kernels.view(n, group_size, 1, kernel_size ** 2, hh // 2, ww // 2)
    return (windows * kg).sum(dim=3).view(n, c, hh // 2, ww // 2)


def _padded_rows(src: torch.Tensor, rows: slice, top: int, bottom: int, pad: int,
                 workspace: Workspace | None = None, name: str = "") -> tuple[torch.Tensor, int]:
    """Rows `rows` of src (..., H, w) plus `top`/`bottom` halo rows, flattened with `pad` zero columns per row.

    Returns (buf (..., L), base): buf[..., base + y·(w+pad) + x] = src[..., rows.start + y, x] for halo-extended
    y and 0 ≤ x < w; pad columns, rows outside the map and `pad` leading/trailing entries are zero. A window
    shift (dy, dx) with |dx| ≤ pad is then the flat shift dy·(w+pad) + dx, with no clipping. With a
    `workspace`, the buffer is its reused scratch `name` (valid until the next call with that name).
    """
    height, w = src.shape[-2:]
    width, count = w + pad, top + (rows.stop - rows.start) + bottom
    shape = (*src.shape[:-2], count * width + 2 * pad)
    buf = src.new_zeros(shape) if workspace is None else workspace.get(name, shape, zero=True)
    lo, hi = max(0, rows.start - top), min(height, rows.stop + bottom)
    grid = buf[..., pad:pad + count * width].view(*src.shape[:-2], count, width)
    first = lo - (rows.start - top)
    grid[..., first:first + hi - lo, :w] = src[..., lo:hi, :]
    return buf, pad + top * width


def _down_geometry(kernel_size: int) -> tuple[int, int, int]:
    """(lowest row shift m, highest row shift m, column pad ≥ |column shift|) of the A2D window."""
    offsets = down_offsets(kernel_size)
    rows = [m for _, _, m, _, _ in offsets]
    cols = [s for _, _, _, _, s in offsets]
    return min(rows), max(rows), max(max(cols), -min(cols), 0)


def _phase_planes(x6: torch.Tensor) -> torch.Tensor:
    """N×G×Cg×h×2×w×2 view of x -> N×G×Cg×2(p)×2(q)×h×w view of its stride-2 phases (no copy)."""
    return x6.permute(0, 1, 2, 4, 6, 3, 5)


def down_forward(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> torch.Tensor:
    """x N×C×H×W (H, W even), kernels N×(G·k²)×H/2×W/2 (same dtype) -> N×C×H/2×W/2.

    Per block, each stride-2 phase of the rows the block reads is copied once into a zero-padded flat temp
    (`_padded_rows`), so each of its k²/4 offsets is one `addcmul_` over long contiguous runs. Blocks are at
    most a quarter of the output, so the temps (accumulator, one phase, kernels) stay below ~1× the output.
    """
    like, x, kernels = x, x.contiguous(), kernels.contiguous()
    n, c, hh, ww = x.shape
    h, w, cg = hh // 2, ww // 2, c // group_size
    planes = _phase_planes(x.view(n, group_size, cg, h, 2, w, 2))
    kern = kernels.view(n, group_size, kernel_size ** 2, h, w)
    out = x.new_empty(n, c, h, w)
    out_v = out.view(n, group_size, cg, h, w)
    m_lo, m_hi, pad = _down_geometry(kernel_size)
    width = w + pad
    by_phase = _offsets_by_phase(kernel_size)
    workspace = Workspace(x)
    for bs, rows in blocks(n, h, c * w * x.element_size(), max_fraction=0.25, device_type=x.device.type):
        band = rows.stop - rows.start
        size = band * width
        weights, k_base = _padded_rows(kern[bs], rows, 0, 0, pad, workspace, "weights")
        weight_e = weights[..., k_base:k_base + size].unsqueeze(3).unbind(2)     # k² × (nb, G, 1, size)
        acc = workspace.get("acc", (bs.stop - bs.start, group_size, cg, size))
        for (p, q), offsets in by_phase.items():
            phase, base = _padded_rows(planes[bs, :, :, p, q], rows, -m_lo, m_hi, pad, workspace, "phase")
            for e, m, s in offsets:
                src, weight = phase.narrow(-1, base + m * width + s, size), weight_e[e]
                if m == 0 and s == 0 and p == 0 and q == 0:
                    torch.mul(src, weight, out=acc)
                else:
                    acc.addcmul_(src, weight)
            del phase, src                           # free before the next phase is allocated
        out_v[bs, :, :, rows] = acc.view(*acc.shape[:-1], band, width)[..., :w]
        del weights, weight_e, acc, weight
    return restore_format(out, like)


def _offsets_by_phase(kernel_size: int) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """`down_offsets` grouped by input phase (p, q), phase (0, 0) and each phase's unshifted offset first."""
    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for e, p, m, q, s in unshifted_first(down_offsets(kernel_size), (2, 4)):
        groups.setdefault((p, q), []).append((e, m, s))
    return dict(sorted(groups.items()))


def down_backward(grad_out: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                  group_size: int, need_x: bool, need_kernels: bool
                  ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of `down_forward` wrt x (N×C×H×W) and kernels (N×(G·k²)×H/2×W/2).

    Per band of output rows [i0, i1), in the flat padded layout of `down_forward`:
    grad_K[e] = Σ_c g · (x phase shifted by (m, s)); grad of x phase (p, q) at rows i0…i1 gathers
    K[e] · g shifted by (−m, −s) (g and K padded with the mirrored halo), then is written back with one copy.
    """
    like = x
    x, kernels = x.contiguous(), kernels.contiguous()
    grad = grad_out.to(x.dtype).contiguous()
    n, c, hh, ww = x.shape
    h, w, cg, k2 = hh // 2, ww // 2, c // group_size, kernel_size ** 2
    planes = _phase_planes(x.view(n, group_size, cg, h, 2, w, 2))
    kern = kernels.view(n, group_size, k2, h, w)
    g = grad.view(n, group_size, cg, h, w)
    grad_x = x.new_empty(n, c, hh, ww) if need_x else None
    grad_k = kernels.new_empty(n, group_size * k2, h, w) if need_kernels else None
    m_lo, m_hi, pad = _down_geometry(kernel_size)
    width = w + pad
    offsets = unshifted_first(down_offsets(kernel_size), (2, 4))
    by_phase = _offsets_by_phase(kernel_size)
    workspace = Workspace(x)
    for bs, rows in blocks(n, h, c * w * x.element_size(), device_type=x.device.type):
        nb, band = bs.stop - bs.start, rows.stop - rows.start
        size = band * width
        g_flat, g_base = _padded_rows(g[bs], rows, m_hi, -m_lo, pad, workspace, "grad")
        if grad_k is not None:
            product = workspace.get("product", (nb, group_size, cg, size))
            gk_flat = workspace.get("grad_k", (nb, group_size, k2, size))
            g_band = g_flat[..., g_base:g_base + size]
            for (p, q), phase_offsets in by_phase.items():
                phase, base = _padded_rows(planes[bs, :, :, p, q], rows, -m_lo, m_hi, pad, workspace, "phase")
                for e, m, s in phase_offsets:
                    start = base + m * width + s
                    torch.mul(g_band, phase.narrow(-1, start, size), out=product)
                    torch.sum(product, dim=2, out=gk_flat[:, :, e])
            grad_k.view(n, group_size, k2, h, w)[bs, :, :, rows] = gk_flat.view(nb, group_size, k2, band,
                                                                                 width)[..., :w]
        if grad_x is not None:
            weights, _ = _padded_rows(kern[bs], rows, m_hi, -m_lo, pad, workspace, "weights")
            gather = workspace.get("gather", (nb, group_size, cg, 2, 2, size))
            weights = weights.unsqueeze(3)
            for e, p, m, q, s in offsets:
                start = g_base - m * width - s
                src, weight = g_flat.narrow(-1, start, size), weights[:, :, e].narrow(-1, start, size)
                if m == 0 and s == 0:
                    torch.mul(src, weight, out=gather[:, :, :, p, q])
                else:
                    gather[:, :, :, p, q].addcmul_(src, weight)
            grad_x.view(n, group_size, cg, h, 2, w, 2)[bs, :, :, rows].copy_(
                gather.view(nb, group_size, cg, 2, 2, band, width)[..., :w].permute(0, 1, 2, 5, 3, 6, 4))
    if grad_x is not None:
        grad_x = restore_format(grad_x, like)
    return grad_x, grad_k


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
        with record_function("a2u::reassembly_down"):
            grad_x, grad_k = down_backward(grad_out, x, kernels, *ctx.config,
                                           need_x=ctx.needs_input_grad[0], need_kernels=ctx.needs_input_grad[1])
        return grad_x, grad_k, None, None
