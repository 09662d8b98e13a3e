"""Triton kernels shared by the up and down reassembly ops, written once for a generic window geometry.

Both ops compute, per image n, group g, channel c of the group and output pixel (oy, ox),

    out[c, oy, ox] = Σ_{dy,dx<KS} K[g·KS² + dy·KS + dx, oy, ox] · x[c, sy + dy, sx + dx],
    sy = (oy // DIV)·MUL − PAD,   sx = (ox // DIV)·MUL − PAD,

with out-of-map taps skipped (zero padding, no renormalisation):
- up (A2U/CARAFE, `reassemble_up`): DIV = r (scale), MUL = 1, PAD = (KS − 1)/2, KS odd;
- down (A2D, `a2d_downsample`): DIV = 1, MUL = 2, PAD = (KS − 2)/2, KS even.

Kernels (gather form, no atomics, fp32 accumulation, fp64 for fp64 tensors; each output is written by one program,
each sum runs in a fixed order, so runs are bitwise reproducible). A program owns BLOCK flattened pixels of one
(image, group) and loops over the group's channels, so the window weights are loaded once per tile:
- `_forward_kernel`: out tile; the KS² taps are the LANES rows of a LANES×BLOCK register tile;
- `_grad_kernels_kernel`: grad_K tile, accumulated over all channels of the group;
- `_grad_input_kernel`: grad_x tile over input pixels; its taps are the (dy, dx, output phase) pairs whose window
  reads the pixel: ⌈KS/MUL⌉²·DIV² of them (36 for up 3×3 ×2, 9 for down 6×6).
This module imports triton: import it only where triton is installed (the package `__init__` does so lazily).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

__all__ = ["Geometry", "forward", "grad_kernels", "grad_input", "backward"]

#: Elements of the LANES×BLOCK register tile each program works on (sets BLOCK from LANES).
TILE_ELEMENTS = 4096
#: Programs the channel split aims for (a few waves on a 132-SM H100).
TARGET_PROGRAMS = 1024


@dataclass(frozen=True)
class Geometry:
    """Window geometry (see the module docstring): KS window size, DIV output-per-input factor, MUL input stride,
    PAD window offset."""
    ks: int
    div: int
    mul: int
    pad: int

    @property
    def input_taps(self) -> int:
        """Taps reading one input pixel (lanes of `_grad_input_kernel`)."""
        t = -(-self.ks // self.mul)
        return t * t * self.div * self.div


@triton.jit
def _window(pix, pix_ok, e, W_OUT, H_IN, W_IN, KS: tl.constexpr, DIV: tl.constexpr, MUL: tl.constexpr,
            PAD: tl.constexpr):
    """Window entries e (LANES) of output pixels pix (BLOCK): (flat input index, in-bounds mask), LANES×BLOCK
    each; out-of-bounds entries index 0."""
    y = ((pix // W_OUT) // DIV)[None, :] * MUL + (e // KS)[:, None] - PAD
    x = ((pix % W_OUT) // DIV)[None, :] * MUL + (e % KS)[:, None] - PAD
    ok = (e < KS * KS)[:, None] & pix_ok[None, :] & (y >= 0) & (y < H_IN) & (x >= 0) & (x < W_IN)
    return tl.where(ok, y * W_IN + x, 0), ok


@triton.jit
def _forward_kernel(x_ptr, k_ptr, out_ptr, C, CG, G, H_IN, W_IN, H_OUT, W_OUT, CHUNK,
                    KS: tl.constexpr, DIV: tl.constexpr, MUL: tl.constexpr, PAD: tl.constexpr,
                    LANES: tl.constexpr, BLOCK: tl.constexpr, FP64: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if FP64 else tl.float32
    ng = tl.program_id(1)
    n, g = ng // G, ng % G
    hw_out, hw_in = H_OUT * W_OUT, H_IN * W_IN
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pix_ok = pix < hw_out
    e = tl.arange(0, LANES)
    src, ok = _window(pix, pix_ok, e, W_OUT, H_IN, W_IN, KS, DIV, MUL, PAD)
    k_base = ng.to(tl.int64) * (KS * KS) * hw_out
    weights = tl.load(k_ptr + k_base + e[:, None].to(tl.int64) * hw_out + pix[None, :], mask=ok,
                      other=0.0).to(ACC)
    c_lo = tl.program_id(2) * CHUNK
    c_hi = tl.minimum(c_lo + CHUNK, CG)
    for c in range(c_lo, c_hi):
        ch = (n * C + g * CG + c).to(tl.int64)
        values = tl.load(x_ptr + ch * hw_in + src, mask=ok, other=0.0).to(ACC)
        tl.store(out_ptr + ch * hw_out + pix, tl.sum(weights * values, axis=0).to(out_ptr.dtype.element_ty),
                 mask=pix_ok)


@triton.jit
def _grad_kernels_kernel(grad_ptr, x_ptr, gk_ptr, C, CG, G, H_IN, W_IN, H_OUT, W_OUT,
                         KS: tl.constexpr, DIV: tl.constexpr, MUL: tl.constexpr, PAD: tl.constexpr,
                         LANES: tl.constexpr, BLOCK: tl.constexpr, FP64: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if FP64 else tl.float32
    ng = tl.program_id(1)
    n, g = ng // G, ng % G
    hw_out, hw_in = H_OUT * W_OUT, H_IN * W_IN
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pix_ok = pix < hw_out
    e = tl.arange(0, LANES)
    src, ok = _window(pix, pix_ok, e, W_OUT, H_IN, W_IN, KS, DIV, MUL, PAD)
    acc = tl.zeros([LANES, BLOCK], dtype=ACC)
    for c in range(0, CG):
        ch = (n * C + g * CG + c).to(tl.int64)
        grad = tl.load(grad_ptr + ch * hw_out + pix, mask=pix_ok, other=0.0).to(ACC)
        acc += grad[None, :] * tl.load(x_ptr + ch * hw_in + src, mask=ok, other=0.0).to(ACC)
    k_base = ng.to(tl.int64) * (KS * KS) * hw_out
    tl.store(gk_ptr + k_base + e[:, None].to(tl.int64) * hw_out + pix[None, :], acc.to(gk_ptr.dtype.element_ty),
             mask=(e < KS * KS)[:, None] & pix_ok[None, :])


@triton.jit
def _grad_input_kernel(grad_ptr, k_ptr, gx_ptr, C, CG, G, H_IN, W_IN, H_OUT, W_OUT, CHUNK,
                       KS: tl.constexpr, DIV: tl.constexpr, MUL: tl.constexpr, PAD: tl.constexpr,
                       LANES: tl.constexpr, BLOCK: tl.constexpr, FP64: tl.constexpr):
    ACC: tl.constexpr = tl.float64 if FP64 else tl.float32
    ng = tl.program_id(1)
    n, g = ng // G, ng % G
    hw_out, hw_in = H_OUT * W_OUT, H_IN * W_IN
    pix = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pix_ok = pix < hw_in
    py, px = pix // W_IN, pix % W_IN
    taps: tl.constexpr = (KS + MUL - 1) // MUL
    t = tl.arange(0, LANES)                       # t = ((ty·taps + tx)·DIV + p)·DIV + q
    q, p = t % DIV, (t // DIV) % DIV
    tx, ty = (t // (DIV * DIV)) % taps, t // (DIV * DIV * taps)
    dy = ((py + PAD) % MUL)[None, :] + MUL * ty[:, None]   # window rows whose stride-MUL source can be py
    dx = ((px + PAD) % MUL)[None, :] + MUL * tx[:, None]
    ry, rx = py[None, :] + PAD - dy, px[None, :] + PAD - dx
    ok = ((t < taps * taps * DIV * DIV)[:, None] & pix_ok[None, :] & (dy < KS) & (dx < KS) & (ry >= 0)
          & (rx >= 0))
    oy = DIV * (tl.where(ok, ry, 0) // MUL) + p[:, None]
    ox = DIV * (tl.where(ok, rx, 0) // MUL) + q[:, None]
    ok = ok & (oy < H_OUT) & (ox < W_OUT)
    dst = tl.where(ok, oy * W_OUT + ox, 0)
    entry = tl.where(ok, dy * KS + dx, 0).to(tl.int64)
    k_base = ng.to(tl.int64) * (KS * KS) * hw_out
    weights = tl.load(k_ptr + k_base + entry * hw_out + dst, mask=ok, other=0.0).to(ACC)
    c_lo = tl.program_id(2) * CHUNK
    c_hi = tl.minimum(c_lo + CHUNK, CG)
    for c in range(c_lo, c_hi):
        ch = (n * C + g * CG + c).to(tl.int64)
        grad = tl.load(grad_ptr + ch * hw_out + dst, mask=ok, other=0.0).to(ACC)
        tl.store(gx_ptr + ch * hw_in + pix, tl.sum(weights * grad, axis=0).to(gx_ptr.dtype.element_ty),
                 mask=pix_ok)


def _tiling(lanes: int, pixels: int, programs_per_tile: int, channels: int, device: torch.device
            ) -> tuple[int, int, int, int]:
    """(LANES padded to a power of 2, BLOCK, tiles, channel chunk) for a launch over `pixels` flattened pixels."""
    lanes = triton.next_power_of_2(lanes)
    block = max(16, min(256, TILE_ELEMENTS // lanes))
    tiles = triton.cdiv(pixels, block)
    splits = max(1, min(channels, TARGET_PROGRAMS // max(1, tiles * programs_per_tile)))
    if device.type != "cuda":
        splits = 1   # the interpreter (CPU tensors) runs programs one by one: no benefit
    chunk = triton.cdiv(channels, splits)
    return lanes, block, tiles, chunk


def forward(x: torch.Tensor, kernels: torch.Tensor, out: torch.Tensor, geo: Geometry, groups: int) -> None:
    """out (N×C×H_out×W_out, contiguous) = x (N×C×H_in×W_in) reassembled by K (N×(G·KS²)×H_out×W_out)."""
    n, c, h_in, w_in = x.shape
    h_out, w_out = out.shape[-2:]
    cg = c // groups
    if out.numel() == 0:
        return
    lanes, block, tiles, chunk = _tiling(geo.ks ** 2, h_out * w_out, n * groups, cg, x.device)
    grid = (tiles, n * groups, triton.cdiv(cg, chunk))
    wrap_triton(_forward_kernel)[grid](x, kernels, out, c, cg, groups, h_in, w_in, h_out, w_out, chunk,
                                       KS=geo.ks, DIV=geo.div, MUL=geo.mul, PAD=geo.pad, LANES=lanes, BLOCK=block,
                                       FP64=x.dtype == torch.float64)


def grad_kernels(grad: torch.Tensor, x: torch.Tensor, grad_k: torch.Tensor, geo: Geometry, groups: int) -> None:
    """grad_k (N×(G·KS²)×H_out×W_out, contiguous) = Σ_c grad[c] · x[c] at each window tap (0 off the map)."""
    n, c, h_in, w_in = x.shape
    h_out, w_out = grad.shape[-2:]
    if grad_k.numel() == 0:
        return
    if c == 0:
        grad_k.zero_()
        return
    lanes, block, tiles, _ = _tiling(geo.ks ** 2, h_out * w_out, n * groups, 1, x.device)
    wrap_triton(_grad_kernels_kernel)[(tiles, n * groups)](
        grad, x, grad_k, c, c // groups, groups, h_in, w_in, h_out, w_out, KS=geo.ks, DIV=geo.div, MUL=geo.mul,
        PAD=geo.pad, LANES=lanes, BLOCK=block, FP64=x.dtype == torch.float64)


def grad_input(grad: torch.Tensor, kernels: torch.Tensor, grad_x: torch.Tensor, geo: Geometry, groups: int) -> None:
    """grad_x (N×C×H_in×W_in, contiguous) = Σ over the taps reading each pixel of K · grad (gather form)."""
    n, c, h_in, w_in = grad_x.shape
    h_out, w_out = grad.shape[-2:]
    cg = c // groups
    if grad_x.numel() == 0:
        return
    lanes, block, tiles, chunk = _tiling(geo.input_taps, h_in * w_in, n * groups, cg, grad.device)
    grid = (tiles, n * groups, triton.cdiv(cg, chunk))
    wrap_triton(_grad_input_kernel)[grid](grad, kernels, grad_x, c, cg, groups, h_in, w_in, h_out, w_out, chunk,
                                          KS=geo.ks, DIV=geo.div, MUL=geo.mul, PAD=geo.pad, LANES=lanes,
                                          BLOCK=block, FP64=grad.dtype == torch.float64)


def backward(grad: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, geo: Geometry, groups: int, need_x: bool,
             need_kernels: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x like x or empty, grad_K like kernels or empty), both contiguous: the body of both backward ops."""
    grad, x, kernels = grad.to(x.dtype).contiguous(), x.contiguous(), kernels.contiguous()
    grad_x = torch.empty_like(x) if need_x else x.new_empty(0)
    grad_k = torch.empty_like(kernels) if need_kernels else x.new_empty(0)
    if need_x:
        grad_input(grad, kernels, grad_x, geo, groups)
    if need_kernels:
        grad_kernels(grad, x, grad_k, geo, groups)
    return grad_x, grad_k
