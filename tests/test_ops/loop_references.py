"""Slow, obviously-correct loop transcriptions of spec 2.2–2.4 (float64), used only by the tests."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pipeline.verify.references import downsample_loop, upsample_loop  # noqa: F401 (re-exported for the tests)


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
