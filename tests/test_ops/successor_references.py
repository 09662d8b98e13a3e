"""Slow, obviously-correct loop transcriptions of FADE, SAPA and DySample (successors_spec.md §2–4), float64.

Each reads the module's weights and recomputes its output pixel by pixel, tap by tap, without the module's
vectorised paths (no unfold, no pixel shuffle, no grid_sample, no reassembly kernel). Used only by the tests.
"""
from __future__ import annotations

import math

import torch


def pointwise(inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """1×1 conv / Linear over channels: inp N×Cin×H×W, weight Cout×Cin(×1×1) -> N×Cout×H×W."""
    out = torch.einsum("oc,nchw->nohw", weight.reshape(weight.shape[0], -1), inp)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def conv_loop(inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int = 1) -> torch.Tensor:
    """'Same' zero-padded stride-1 k×k conv (k odd), one output channel, input channel and tap at a time."""
    n, c, h, w = inp.shape
    cout, cin_g, k, _ = weight.shape
    radius, cout_g = (k - 1) // 2, cout // groups
    padded = torch.zeros(n, c, h + 2 * radius, w + 2 * radius, dtype=inp.dtype)
    padded[:, :, radius:radius + h, radius:radius + w] = inp
    out = torch.zeros(n, cout, h, w, dtype=inp.dtype)
    for o in range(cout):
        g = o // cout_g
        for ci in range(cin_g):
            for dy in range(k):
                for dx in range(k):
                    out[:, o] += weight[o, ci, dy, dx] * padded[:, g * cin_g + ci, dy:dy + h, dx:dx + w]
        if bias is not None:
            out[:, o] += bias[o]
    return out


def nearest_loop(inp: torch.Tensor, s: int) -> torch.Tensor:
    """out[..., Y, X] = inp[..., ⌊Y/s⌋, ⌊X/s⌋]."""
    h, w = inp.shape[-2:]
    rows = torch.arange(s * h) // s
    cols = torch.arange(s * w) // s
    return inp[..., rows[:, None], cols[None, :]]


def softmax_loop(logits: torch.Tensor, dim: int) -> torch.Tensor:
    e = torch.exp(logits - logits.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


def carafe_loop(x: torch.Tensor, kernels: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """mmcv CARAFE (one group): out[n, c, Y, X] = Σ_{i,j} K[n, i·k + j, Y, X] · x[n, c, ⌊Y/s⌋ + i − r, ⌊X/s⌋ + j − r],
    out-of-image taps skipped (zero padding), no renormalisation."""
    n, c, h, w = x.shape
    r = (k - 1) // 2
    out = torch.zeros(n, c, s * h, s * w, dtype=x.dtype)
    for yy in range(s * h):
        for xx in range(s * w):
            for i in range(k):
                for j in range(k):
                    y, xs = yy // s + i - r, xx // s + j - r
                    if 0 <= y < h and 0 <= xs < w:
                        out[:, :, yy, xx] += kernels[:, i * k + j, yy, xx, None] * x[:, :, y, xs]
    return out


def fade_loop(m, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """FADE (spec §2.4) from the weights of `m` (one kernel group)."""
    s, k = m.scale_factor, m.up_kernel
    groups = m.content_encoder.groups
    enc, b = m.content_encoder.weight, m.content_encoder.bias
    e = pointwise(guide, m.compressor_guide.weight, m.compressor_guide.bias)
    d = pointwise(x, m.compressor_x.weight, None)
    logits = conv_loop(e, enc, b, groups) + nearest_loop(conv_loop(d, enc, b, groups), s)
    up = carafe_loop(x, softmax_loop(logits, 1), k, s)
    if m.gate is None:
        return up
    gate = 1 / (1 + torch.exp(-nearest_loop(pointwise(x, m.gate.weight, m.gate.bias), s)))
    return gate * guide + (1 - gate) * up


def layer_norm_loop(inp: torch.Tensor, norm) -> torch.Tensor:
    """LayerNorm over the channels of N×C×H×W at every pixel (biased variance)."""
    mean = inp.mean(dim=1, keepdim=True)
    var = ((inp - mean) ** 2).mean(dim=1, keepdim=True)
    return (inp - mean) / torch.sqrt(var + norm.eps) * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)


def sapa_loop(m, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """SAPA-B / SAPA-G (spec §3.3) from the weights of `m`; out-of-image keys have similarity 0."""
    s, k = m.scale_factor, m.up_kernel
    r = (k - 1) // 2
    n, c, h, w = x.shape
    x_norm = layer_norm_loop(x, m.norm_x)
    q = pointwise(layer_norm_loop(guide, m.norm_guide), m.query.weight, m.query.bias)
    key = pointwise(x_norm, m.key.weight, m.key.bias)
    if m.q_mode == "gate":
        gamma = nearest_loop(1 / (1 + torch.exp(-pointwise(x_norm, m.gate.weight, m.gate.bias))), s)
        q = gamma * q + (1 - gamma) * pointwise(nearest_loop(x, s), m.query_x.weight, m.query_x.bias)
    out = torch.zeros(n, c, s * h, s * w, dtype=x.dtype)
    for yy in range(s * h):
        for xx in range(s * w):
            sims = torch.zeros(n, k * k, dtype=x.dtype)
            for i in range(k):
                for j in range(k):
                    y, xs = yy // s + i - r, xx // s + j - r
                    if 0 <= y < h and 0 <= xs < w:
                        sims[:, i * k + j] = (q[:, :, yy, xx] * key[:, :, y, xs]).sum(1)
            weights = softmax_loop(sims, 1)
            for i in range(k):
                for j in range(k):
                    y, xs = yy // s + i - r, xx // s + j - r
                    if 0 <= y < h and 0 <= xs < w:
                        out[:, :, yy, xx] += weights[:, i * k + j, None] * x[:, :, y, xs]
    return out


def bilinear_border(img: torch.Tensor, px: float, py: float) -> torch.Tensor:
    """img C×H×W at the continuous pixel position (px, py) (centres at integers), positions clamped to the
    image (grid_sample's border padding), bilinear."""
    _, h, w = img.shape
    px, py = min(max(px, 0.0), w - 1.0), min(max(py, 0.0), h - 1.0)
    x0, y0 = math.floor(px), math.floor(py)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = px - x0, py - y0
    return ((1 - fy) * ((1 - fx) * img[:, y0, x0] + fx * img[:, y0, x1])
            + fy * ((1 - fx) * img[:, y1, x0] + fx * img[:, y1, x1]))


def dysample_loop(m, x: torch.Tensor) -> torch.Tensor:
    """DySample (spec §4.2) from the weights of `m`, 'lp' or 'pl' style, sampled point by point."""
    n, c, h, w = x.shape
    s, groups = m.scale_factor, m.up_group
    s2, cg = s * s, c // groups
    if m.style == "lp":
        raw = pointwise(x, m.offset.weight, m.offset.bias)
        scope = None if m.scope is None else pointwise(x, m.scope.weight, None)
    else:                                   # offsets computed at high resolution on the depth-to-space x
        shuffled = torch.zeros(n, c // s2, s * h, s * w, dtype=x.dtype)
        for ch in range(c // s2):
            for a in range(s):
                for b in range(s):
                    shuffled[:, ch, a::s, b::s] = x[:, ch * s2 + a * s + b]
        raw_hr = pointwise(shuffled, m.offset.weight, m.offset.bias)
        scope_hr = None if m.scope is None else pointwise(shuffled, m.scope.weight, None)
        raw = torch.zeros(n, raw_hr.shape[1] * s2, h, w, dtype=x.dtype)
        scope = None if scope_hr is None else torch.zeros_like(raw)
        for ch in range(raw_hr.shape[1]):
            for a in range(s):
                for b in range(s):
                    raw[:, ch * s2 + a * s + b] = raw_hr[:, ch, a::s, b::s]
                    if scope is not None:
                        scope[:, ch * s2 + a * s + b] = scope_hr[:, ch, a::s, b::s]
    factor = 0.25 if scope is None else 0.5 / (1 + torch.exp(-scope))
    offsets = (raw * factor).detach()
    centre = [(b - (s - 1) / 2) / s for b in range(s)]
    out = torch.zeros(n, c, s * h, s * w, dtype=x.dtype)
    for bn in range(n):
        for g in range(groups):
            for i in range(h):
                for j in range(w):
                    for a in range(s):
                        for b in range(s):
                            sub = g * s2 + a * s + b
                            px = j + centre[b] + float(offsets[bn, sub, i, j])
                            py = i + centre[a] + float(offsets[bn, groups * s2 + sub, i, j])
                            out[bn, g * cg:(g + 1) * cg, s * i + a, s * j + b] = bilinear_border(
                                x[bn, g * cg:(g + 1) * cg], px, py)
    return out
