"""Upsampling reassembly on small maps: channels-last flat buffers, so every op runs over long vectors.

`up.py` iterates over NCHW rows; on maps of a few pixels per row (the toy network's 4×4 and 8×8 levels, a 64²
matting crop's deepest levels) each op then works on runs of 8–32 floats clipped at the borders, and costs
several times its memory traffic. Here a block of whole images is copied once into a channels-last buffer
with zero halo rows and zero pad columns (`_Geometry`): a window offset (row shift a, column shift b) is a
flat shift of the pixel index, so each offset is one op over an (L, C) slab whose inner dimension is the
C ≥ 32 channels, and no offset needs clipping (reads past a border land on zeros). Positions in halo rows
and pad columns are computed too and dropped (≤ 2× the valid work on 4×4 maps, ~1.2× at 16×16). As in up.py,
x is column-repeated r× (x_r) so output row phase p of offset (a, b) reads x_r shifted by (a, r·b): r·s² ops
per direction.

Measured against the NCHW kernels (1 thread, minimum of 15 interleaved runs, toy shapes N=20): forward
0.3–0.9×, backward 0.6–0.8× the time at low-resolution 4×4 … 16×16. The same layout for A2D's downsampling
was not faster (its NCHW kernel already runs over flat padded phase rows), so `down.py` has no small path.
Kernel gradients are per-position channel dot products: a product and a sum over the contiguous channels per
offset (a batched matmul of (L·G)×1×C_g by (L·G)×C_g×1 was faster per element but costs ~50 µs per call on
these spans). Results equal the NCHW kernels up to
float summation order (the same terms, added in the same offset order).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from models.ops.kernels.common import blocks


@dataclass(frozen=True)
class _Geometry:
    """Flat layout of one image plane: `rows` (h + top + bottom halo) × `width` (w' + pad) positions.

    A block of `nb` images is stored as nb consecutive planes after `lead` slack positions (and `trail` after):
    output position (i, j) of image t is `lead + t·plane + (top + i)·width + j`; the op over all outputs of the
    block covers [start, start + span) with start = lead + top·width.
    """

    rows: int
    width: int
    top: int
    lead: int
    trail: int

    @property
    def plane(self) -> int:
        return self.rows * self.width

    def span(self, nb: int, h: int) -> int:
        return (nb - 1) * self.plane + h * self.width

    def start(self) -> int:
        return self.lead + self.top * self.width

    def length(self, nb: int) -> int:
        return self.lead + nb * self.plane + self.trail

    def grid(self, buf: torch.Tensor, nb: int) -> torch.Tensor:
        """The nb×rows×width(×…) view of a flat (length, …) buffer."""
        return buf[self.lead:self.lead + nb * self.plane].view(nb, self.rows, self.width, *buf.shape[1:])


def _block_images(n: int, plane_bytes: int, device_type: str) -> list[slice]:
    """Whole-image blocks of about `common.BLOCK_BYTES` per thread (one image at least)."""
    return [bs for bs, _ in blocks(n, 1, plane_bytes, device_type=device_type)]


# --------------------------------------------------------------------------------------------------- up


def _up_geometry(h: int, w: int, kernel_size: int, r: int) -> _Geometry:
    radius = (kernel_size - 1) // 2
    return _Geometry(rows=h + 2 * radius, width=r * (w + radius), top=radius, lead=r * radius, trail=r * radius)


def _up_source(x: torch.Tensor, geo: _Geometry, r: int) -> torch.Tensor:
    """x nb×C×h×w -> flat (length, C) channels-last x_r (columns repeated r×), zero halo and pads."""
    nb, c, h, w = x.shape
    buf = x.new_zeros(geo.length(nb), c)
    grid = geo.grid(buf, nb).view(nb, geo.rows, geo.width // r, r, c)
    grid[:, geo.top:geo.top + h, :w] = x.permute(0, 2, 3, 1).unsqueeze(3)
    return buf


def _up_weights(kernels: torch.Tensor, geo: _Geometry, s2: int, group_size: int, r: int,
                h: int, rw: int) -> torch.Tensor:
    """K nb×(G·s²)×rh×rw -> (r, s², length, G): the weight of offset e for output row phase p, flat."""
    nb = kernels.shape[0]
    buf = kernels.new_zeros(r, s2, geo.length(nb), group_size)
    grid = buf[:, :, geo.lead:geo.lead + nb * geo.plane].view(r, s2, nb, geo.rows, geo.width, group_size)
    grid[:, :, :, geo.top:geo.top + h, :rw] = kernels.view(nb, group_size, s2, h, r, rw).permute(4, 2, 0, 3, 5, 1)
    return buf


def up_forward_small(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                     scale_factor: int) -> torch.Tensor:
    """`up.up_forward` for small maps: x N×C×h×w, kernels N×(G·s²)×rh×rw (contiguous, same dtype)."""
    from models.ops.kernels.up import up_offsets  # local: up.py imports this module

    n, c, h, w = x.shape
    r, s2, cg = scale_factor, kernel_size ** 2, c // group_size
    geo = _up_geometry(h, w, kernel_size, r)
    out = x.new_empty(n, c, r * h, r * w)
    offsets = up_offsets(kernel_size)
    for bs in _block_images(n, 3 * geo.plane * c * x.element_size(), x.device.type):
        nb = bs.stop - bs.start
        span, start = geo.span(nb, h), geo.start()
        src = _up_source(x[bs], geo, r)
        weights = _up_weights(kernels[bs], geo, s2, group_size, r, h, r * w)
        acc = x.new_empty(r, geo.length(nb), c)
        for p in range(r):
            target = acc[p, start:start + span].view(span, group_size, cg)
            for i, (e, a, b) in enumerate(offsets):
                shifted = src[start + a * geo.width + r * b:][:span].view(span, group_size, cg)
                weight = weights[p, e, start:start + span].unsqueeze(-1)
                if i == 0:
                    torch.mul(shifted, weight, out=target)
                else:
                    target.addcmul_(shifted, weight)
        valid = geo.grid(acc.transpose(0, 1), nb)[:, geo.top:geo.top + h, :r * w]   # nb×h×rw×r×C
        out[bs].view(nb, c, h, r, r * w).copy_(valid.permute(0, 4, 1, 3, 2))
    return out


def up_backward_small(grad: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                      group_size: int, scale_factor: int, need_x: bool, need_kernels: bool
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """`up.up_backward` for small maps (inputs contiguous, same dtype)."""
    from models.ops.kernels.up import up_offsets

    n, c, h, w = x.shape
    r, s2, cg = scale_factor, kernel_size ** 2, c // group_size
    geo = _up_geometry(h, w, kernel_size, r)
    grad_x = x.new_empty(n, c, h, w) if need_x else None
    grad_k = kernels.new_empty(n, group_size * s2, r * h, r * w) if need_kernels else None
    offsets = up_offsets(kernel_size)
    for bs in _block_images(n, 4 * geo.plane * c * x.element_size(), x.device.type):
        nb = bs.stop - bs.start
        span, start = geo.span(nb, h), geo.start()
        src = _up_source(x[bs], geo, r)
        g = x.new_zeros(r, geo.length(nb), c)
        geo.grid(g.transpose(0, 1), nb)[:, geo.top:geo.top + h, :r * w].copy_(
            grad[bs].view(nb, c, h, r, r * w).permute(0, 2, 4, 3, 1))
        weights = _up_weights(kernels[bs], geo, s2, group_size, r, h, r * w) if need_x else None
        gk = kernels.new_empty(r, s2, geo.length(nb), group_size) if need_kernels else None
        gsrc = torch.zeros_like(src) if need_x else None
        product = x.new_empty(span, group_size, cg) if need_kernels else None
        for p in range(r):
            g_p = g[p, start:start + span].view(span, group_size, cg)
            for e, a, b in offsets:
                lo = start + a * geo.width + r * b
                if gk is not None:   # grad_K[e, p, pos, g] = Σ_c g[p, pos, g, c] · x_r[pos + shift, g, c]
                    torch.mul(g_p, src[lo:lo + span].view(span, group_size, cg), out=product)
                    torch.sum(product, dim=-1, out=gk[p, e, start:start + span])
                if gsrc is not None:  # grad_x_r[pos + shift] += K[e, p, pos] · g[p, pos]
                    gsrc[lo:lo + span].view(span, group_size, cg).addcmul_(
                        g_p, weights[p, e, start:start + span].unsqueeze(-1))
        if grad_k is not None:
            valid = gk[:, :, geo.lead:geo.lead + nb * geo.plane].view(r, s2, nb, geo.rows, geo.width, group_size)
            grad_k[bs].view(nb, group_size, s2, h, r, r * w).copy_(
                valid[:, :, :, geo.top:geo.top + h, :r * w].permute(2, 5, 1, 3, 0, 4))
        if grad_x is not None:
            repeated = geo.grid(gsrc, nb).view(nb, geo.rows, geo.width // r, r, c)[:, geo.top:geo.top + h, :w]
            torch.sum(repeated, dim=3, out=grad_x[bs].permute(0, 2, 3, 1))
    return grad_x, grad_k
