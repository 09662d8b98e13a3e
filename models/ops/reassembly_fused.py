"""Cache-blocked reassembly kernels for A2U / A2D with an explicit backward (pure PyTorch, CPU and CUDA).

Both ops are sums over window offsets of `kernel_slice * shifted_input`, i.e. memory-bound element-wise passes.
They are made fast by (1) making every pass one broadcasting, vectorisable `addcmul_` whose innermost axis is
contiguous for all operands, and (2) running all passes over one *block* (a few images, or a band of rows of
one image, ~1 MiB of output) before moving on, so the passes hit the L2 cache instead of DRAM.

- Upsampling (×r): x is first repeated r× along columns (`x_r`: N×C×h×rw, 0.5× the output for r=2). Then the
  output viewed as N×C×h×r×rw reads, for offset (a, b), `x_r[..., i+a, None, J + r·b]` (broadcast over the r
  row phases, no copy) times `K[:, e]` viewed the same way (broadcast over channels): s² passes in total.
  Backward: grad_x is gathered per band (g rows shifted by −a, clipped) into a column-repeated temp, then the
  r columns are summed; grad_K[e] = Σ_c g · x_r-shift (one product + one channel reduction per offset).
- Downsampling (÷2): per block, each stride-2 phase of the rows it reads (plus a halo) is copied once into a
  flat temp with zero pad columns between rows (`_padded_rows`); a window shift (m, s) is then a flat offset,
  so each of the k² offsets is one `addcmul_` over one long contiguous run (short rows of clipped 2-D views
  were 5–10× slower per element). Backward uses the same layout: grad_K[e] = Σ_c g · shifted phase, and the
  four grad phases of the band gather K·g at the mirrored shifts, then are written back with one copy.

Out-of-map window terms are skipped by clipping each offset's valid range (zero padding, no renormalisation:
CARAFE-naive semantics) or by the zero pads. The unshifted offset covers every output and is written first
with `mul(out=)`, so no accumulator is zero-filled. Extra memory: x_r (0.5× the output, upsampling only) plus
per-block temps (bounded by BLOCK_BYTES per thread and, for A2D, by a quarter of the output).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

#: Bytes of output (or of gradient, in backward) per block and intra-op thread: ~L2-sized. Measured on a 2-core
#: AMD EPYC (1 MiB L2 per core), 1 thread: 1–2 MiB best; smaller blocks lose to per-call Python overhead.
BLOCK_BYTES = 1 << 20
#: Block bytes on accelerators (CUDA): large, since each op is a kernel launch and memory bandwidth is ample.
DEVICE_BLOCK_BYTES = 64 << 20


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


def _unshifted_first(offsets: list[tuple], shift_positions: tuple[int, ...]) -> list[tuple]:
    """Offsets with zero shifts first (stable): they cover every output, so they initialise the buffers."""
    return sorted(offsets, key=lambda o: any(o[i] != 0 for i in shift_positions))


def _blocks(n: int, rows: int, row_bytes: int, max_fraction: float = 1.0, device_type: str = "cpu"
            ) -> list[tuple[slice, slice]]:
    """(batch slice, row slice) blocks: whole images when they fit, else row bands.

    On CPU a block holds about BLOCK_BYTES per intra-op thread (each op splits its block between the threads),
    which also keeps the number of parallel regions, each a thread barrier, small. On GPUs blocks are large
    (DEVICE_BLOCK_BYTES: few kernel launches). Either way at most `max_fraction` of the whole (bounds per-block
    temps relative to the output).
    """
    image_bytes = max(1, rows * row_bytes)
    per_block = BLOCK_BYTES * max(1, torch.get_num_threads()) if device_type == "cpu" else DEVICE_BLOCK_BYTES
    budget = min(per_block, max(row_bytes, int(n * image_bytes * max_fraction)))
    if image_bytes <= budget:
        step = budget // image_bytes
        return [(slice(i, min(n, i + step)), slice(0, rows)) for i in range(0, n, step)]
    band = max(1, budget // max(1, row_bytes))
    return [(slice(i, i + 1), slice(r, min(rows, r + band))) for i in range(n) for r in range(0, rows, band)]


def _shift(rows: slice, shift: int, size: int) -> tuple[slice, slice] | None:
    """Part of the block rows `rows` whose source row i + shift is inside [0, size): (target, source) slices."""
    start, stop = max(rows.start, -shift), min(rows.stop, size - shift)
    if start >= stop:
        return None
    return slice(start, stop), slice(start + shift, stop + shift)


def _local(sl: slice, origin: int) -> slice:
    return slice(sl.start - origin, sl.stop - origin)


def _repeat_columns(x: torch.Tensor, r: int) -> torch.Tensor:
    """N×C×h×w -> N×C×h×(r·w) with every column repeated r times (nearest), via r strided copies."""
    out = x.new_empty(*x.shape, r)
    for phase in range(r):
        out[..., phase] = x
    return out.view(*x.shape[:-1], x.shape[-1] * r)


def _restore_format(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


def up_forward(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
               scale_factor: int) -> torch.Tensor:
    """x N×C×h×w, kernels N×(G·s²)×rh×rw (same dtype) -> N×C×rh×rw."""
    like, x, kernels = x, x.contiguous(), kernels.contiguous()
    n, c, h, w = x.shape
    r, cg = scale_factor, c // group_size
    x_r = _repeat_columns(x, r).view(n, group_size, cg, h, r * w)
    kern = kernels.view(n, group_size, kernel_size ** 2, 1, h, r, r * w)
    out = x.new_empty(n, c, r * h, r * w)
    out_v = out.view(n, group_size, cg, h, r, r * w)
    offsets = _unshifted_first(up_offsets(kernel_size), (1, 2))
    for bs, rows in _blocks(n, h, c * r * r * w * x.element_size(), device_type=x.device.type):
        x_b, out_b, kern_b = x_r[bs].unsqueeze(4), out_v[bs], kern[bs].unbind(2)   # hoisted views
        for e, a, b in offsets:
            row_pair, col_pair = _shift(rows, a, h), _clipped_range(r * b, r * w)
            if row_pair is None or col_pair is None:
                continue
            (oi, xi), (oj, xj) = row_pair, col_pair
            src, weight, target = x_b[..., xi, :, xj], kern_b[e][..., oi, :, oj], out_b[..., oi, :, oj]
            if a == 0 and b == 0:
                torch.mul(src, weight, out=target)
            else:
                target.addcmul_(src, weight)
    return _restore_format(out, like)


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
    r, cg, s2 = scale_factor, c // group_size, kernel_size ** 2
    kern = kernels.view(n, group_size, s2, 1, h, r, r * w)
    g = grad.view(n, group_size, cg, h, r, r * w)
    x_r = _repeat_columns(x, r).view(n, group_size, cg, h, 1, r * w) if need_kernels else None
    grad_x = x.new_empty(n, c, h, w) if need_x else None
    grad_k = kernels.new_empty(n, group_size * s2, r * h, r * w) if need_kernels else None
    gx_v = grad_x.view(n, group_size, cg, h, w) if grad_x is not None else None
    gk_v = grad_k.view(n, group_size, s2, h, r, r * w) if grad_k is not None else None
    offsets = _unshifted_first(up_offsets(kernel_size), (1, 2))
    for bs, rows in _blocks(n, h, c * r * r * w * x.element_size(), device_type=x.device.type):
        band = rows.stop - rows.start
        gather = x.new_empty(bs.stop - bs.start, group_size, cg, band, r * w) if gx_v is not None else None
        product = x.new_empty(bs.stop - bs.start, group_size, cg, band, r, r * w) if gk_v is not None else None
        g_b, g_phases = g[bs], g[bs].unbind(4)                                     # hoisted views
        kern_phases = [k.unbind(4) for k in kern[bs].unbind(2)]                    # [e][phase]: nb×G×1×h×rw
        for e, a, b in offsets:
            if gather is not None:   # grad_x_r[i, J] += Σ_p K[e, i−a, p, J−rb] · g[i−a, p, J−rb]
                row_pair, col_pair = _shift(rows, -a, h), _clipped_range(-r * b, r * w)
                if row_pair is not None and col_pair is not None:
                    (xi, gi), (xj, gj) = row_pair, col_pair
                    target = gather[..., _local(xi, rows.start), xj]
                    for phase in range(r):
                        src, weight = g_phases[phase][..., gi, gj], kern_phases[e][phase][..., gi, gj]
                        if a == 0 and b == 0 and phase == 0:
                            torch.mul(src, weight, out=target)
                        else:
                            target.addcmul_(src, weight)
            if product is not None:  # grad_K[e, i, p, J] = Σ_c g[c, i, p, J] · x_r[c, i+a, J+rb]
                row_pair, col_pair = _shift(rows, a, h), _clipped_range(r * b, r * w)
                target = gk_v[bs, :, e, rows]
                if row_pair is None or col_pair is None:
                    target.zero_()
                    continue
                (oi, xi), (oj, xj) = row_pair, col_pair
                if (oi.stop - oi.start) < band or (oj.stop - oj.start) < r * w:
                    target.zero_()   # border outputs whose window entry e falls outside the map
                part = product[..., _local(oi, rows.start), :, oj]
                torch.mul(g_b[..., oi, :, oj], x_r[bs, :, :, xi, :, xj], out=part)
                torch.sum(part, dim=2, out=target[..., _local(oi, rows.start), :, oj])
        if gather is not None:
            torch.sum(gather.view(*gather.shape[:-1], w, r), dim=-1, out=gx_v[bs, :, :, rows])
    if grad_x is not None:
        grad_x = _restore_format(grad_x, like)
    return grad_x, grad_k


def _padded_rows(src: torch.Tensor, rows: slice, top: int, bottom: int, pad: int) -> tuple[torch.Tensor, int]:
    """Rows `rows` of src (..., H, w) plus `top`/`bottom` halo rows, flattened with `pad` zero columns per row.

    Returns (buf (..., L), base): buf[..., base + y·(w+pad) + x] = src[..., rows.start + y, x] for halo-extended
    y and 0 ≤ x < w; pad columns, rows outside the map and `pad` leading/trailing entries are zero. A window
    shift (dy, dx) with |dx| ≤ pad is then the flat shift dy·(w+pad) + dx, with no clipping.
    """
    height, w = src.shape[-2:]
    width, count = w + pad, top + (rows.stop - rows.start) + bottom
    buf = src.new_zeros(*src.shape[:-2], count * width + 2 * pad)
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
    for bs, rows in _blocks(n, h, c * w * x.element_size(), max_fraction=0.25, device_type=x.device.type):
        band = rows.stop - rows.start
        size = band * width
        weights, k_base = _padded_rows(kern[bs], rows, 0, 0, pad)
        weight_e = weights[..., k_base:k_base + size].unsqueeze(3).unbind(2)     # k² × (nb, G, 1, size)
        acc = x.new_empty(bs.stop - bs.start, group_size, cg, size)
        for (p, q), offsets in by_phase.items():
            phase, base = _padded_rows(planes[bs, :, :, p, q], rows, -m_lo, m_hi, pad)
            for e, m, s in offsets:
                src, weight = phase.narrow(-1, base + m * width + s, size), weight_e[e]
                if m == 0 and s == 0 and p == 0 and q == 0:
                    torch.mul(src, weight, out=acc)
                else:
                    acc.addcmul_(src, weight)
            del phase, src                           # free before the next phase is allocated
        out_v[bs, :, :, rows] = acc.view(*acc.shape[:-1], band, width)[..., :w]
        del weights, weight_e, acc, weight
    return _restore_format(out, like)


def _offsets_by_phase(kernel_size: int) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """`down_offsets` grouped by input phase (p, q), phase (0, 0) and each phase's unshifted offset first."""
    groups: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for e, p, m, q, s in _unshifted_first(down_offsets(kernel_size), (2, 4)):
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
    offsets = _unshifted_first(down_offsets(kernel_size), (2, 4))
    by_phase = _offsets_by_phase(kernel_size)
    for bs, rows in _blocks(n, h, c * w * x.element_size(), device_type=x.device.type):
        nb, band = bs.stop - bs.start, rows.stop - rows.start
        size = band * width
        g_flat, g_base = _padded_rows(g[bs], rows, m_hi, -m_lo, pad)
        if grad_k is not None:
            product = x.new_empty(nb, group_size, cg, size)
            gk_flat = x.new_empty(nb, group_size, k2, size)
            g_band = g_flat[..., g_base:g_base + size]
            for (p, q), phase_offsets in by_phase.items():
                phase, base = _padded_rows(planes[bs, :, :, p, q], rows, -m_lo, m_hi, pad)
                for e, m, s in phase_offsets:
                    start = base + m * width + s
                    torch.mul(g_band, phase.narrow(-1, start, size), out=product)
                    torch.sum(product, dim=2, out=gk_flat[:, :, e])
            grad_k.view(n, group_size, k2, h, w)[bs, :, :, rows] = gk_flat.view(nb, group_size, k2, band,
                                                                                 width)[..., :w]
        if grad_x is not None:
            weights, _ = _padded_rows(kern[bs], rows, m_hi, -m_lo, pad)
            gather = x.new_empty(nb, group_size, cg, 2, 2, size)
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
        grad_x = _restore_format(grad_x, like)
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
