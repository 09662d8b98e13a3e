"""Slow, obviously-correct loop transcriptions of spec 2.2–2.4 (float64), used only by the tests."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def upsample_loop(x: torch.Tensor, kernels: torch.Tensor, s: int, groups: int, r: int = 2) -> torch.Tensor:
    """out[c, i, j] = Σ_{a,b} K[g·s² + (a+R)·s + (b+R), i, j] · x[c, i//r + a, j//r + b], skipping outside."""
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h * r, w * r, dtype=x.dtype)
    radius, cg = (s - 1) // 2, c // groups
    for i in range(h * r):
        for j in range(w * r):
            for a in range(-radius, radius + 1):
                for b in range(-radius, radius + 1):
                    yi, xj = i // r + a, j // r + b
                    if not (0 <= yi < h and 0 <= xj < w):
                        continue
                    for g in range(groups):
                        weight = kernels[:, g * s * s + (a + radius) * s + (b + radius), i, j]
                        out[:, g * cg:(g + 1) * cg, i, j] += weight[:, None] * x[:, g * cg:(g + 1) * cg, yi, xj]
    return out


def downsample_loop(x: torch.Tensor, kernels: torch.Tensor, k: int, groups: int) -> torch.Tensor:
    """out[c, i, j] = Σ_{dy,dx<k} K[g·k² + dy·k + dx, i, j] · x[c, 2i−(k−2)/2+dy, 2j−(k−2)/2+dx]."""
    n, c, hh, ww = x.shape
    out = torch.zeros(n, c, hh // 2, ww // 2, dtype=x.dtype)
    before, cg = (k - 2) // 2, c // groups
    for i in range(hh // 2):
        for j in range(ww // 2):
            for dy in range(k):
                for dx in range(k):
                    yi, xj = 2 * i - before + dy, 2 * j - before + dx
                    if not (0 <= yi < hh and 0 <= xj < ww):
                        continue
                    for g in range(groups):
                        weight = kernels[:, g * k * k + dy * k + dx, i, j]
                        out[:, g * cg:(g + 1) * cg, i, j] += weight[:, None] * x[:, g * cg:(g + 1) * cg, yi, xj]
    return out


def generator_loop(gen, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-rank, per-channel transcription of spec 2.2 using `gen`'s weights (rank/group-correct)."""
    n, c, hh, ww = x.shape
    s, k, d, groups = gen.up_kernel, gen.encoder_kernel, gen.rank, gen.up_group
    m = 4 * s * s * groups
    h, w = hh // 2, ww // 2
    downs, ups = [], []
    for b in range(n):
        xb = x[b]
        mean = xb.mean(dim=(1, 2))
        p_up = (gen.proj_up.weight[:, :, 0, 0] @ mean + gen.proj_up.bias).view(m, d)
        p_dn = (gen.proj_down.weight[:, :, 0, 0] @ mean + gen.proj_down.bias).view(m, d)
        pooled = F.adaptive_avg_pool2d(xb[None], k)[0]                       # C×k×k
        u = torch.einsum("fc,cij->fij", gen.filter_u.weight[:, :, 0, 0], pooled) + gen.filter_u.bias[:, None, None]
        v = torch.einsum("fc,cij->fij", gen.filter_v.weight[:, :, 0, 0], pooled) + gen.filter_v.bias[:, None, None]
        z = torch.zeros(d, h, w, dtype=x.dtype)
        for q in range(d):
            e_u = torch.zeros(c, h, w, dtype=x.dtype)
            e_v = torch.zeros(c, h, w, dtype=x.dtype)
            for ch in range(c):
                fu = u[q] if gen.shared else u[q * c + ch]
                fv = v[q] if gen.shared else v[q * c + ch]
                e_u[ch] = F.conv2d(xb[ch][None, None], fu[None, None], stride=2, padding=(k - 1) // 2)[0, 0]
                e_v[ch] = F.conv2d(xb[ch][None, None], fv[None, None], stride=2, padding=(k - 1) // 2)[0, 0]
            e_u = F.leaky_relu(F.group_norm(e_u[None], gen.norm_u.num_groups, gen.norm_u.weight, gen.norm_u.bias,
                                            gen.norm_u.eps)[0], 0.01)
            e_v = F.leaky_relu(F.group_norm(e_v[None], gen.norm_v.num_groups, gen.norm_v.weight, gen.norm_v.bias,
                                            gen.norm_v.eps)[0], 0.01)
            z[q] = (e_u * e_v).sum(0) / math.sqrt(c)
        logit_up = torch.einsum("md,dhw->mhw", p_up, z)
        logit_dn = torch.einsum("md,dhw->mhw", p_dn, z)
        up = torch.zeros(groups * s * s, hh, ww, dtype=x.dtype)
        for g in range(groups):
            for e in range(s * s):
                for a in range(2):
                    for bb in range(2):
                        up[g * s * s + e, a::2, bb::2] = logit_up[((g * s * s + e) * 4) + 2 * a + bb]
        up = torch.sigmoid(up).view(groups, s * s, hh, ww)
        up = up.softmax(dim=1) if s > 1 else up
        ups.append(up.reshape(-1, hh, ww))
        downs.append(logit_dn.view(groups, -1, h, w).softmax(dim=1).reshape(-1, h, w))
    return torch.stack(downs), torch.stack(ups)
