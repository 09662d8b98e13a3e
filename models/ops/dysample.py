"""DySample, upsampling by dynamic point sampling ('lp' style, 4 groups; DySample+ with a dynamic scope).

Paper: Liu, Lu, Fu, Cao, "Learning to Upsample by Learning to Sample", ICCV 2023 (https://arxiv.org/abs/2308.15085);
official code tiny-smart/dysample (`dysample.py`). Written from `shared/design/successors_spec.md` §4, not from
the official code. No kernels, no guide: x (N×C×h×w) is resampled at learnt points with `grid_sample`.

1. offsets O (N×2·G·s²×h×w, in low-resolution pixels), channel comp·G·s² + g·s² + a·s + b = the x (comp 0) or
   y (comp 1) offset of sub-pixel (a, b) of group g:
   - 'lp' (linear, then pixel shuffle): O = 0.25·offset(x) + P₀; with `dyscope` (DySample+),
     O = 0.5·sigmoid(scope(x))·offset(x) + P₀ (the range factor is 0.25 at initialisation);
   - 'pl' (pixel shuffle, then linear): the same convs on pixel_shuffle(x, s) (C/s² channels, high resolution),
     pixel-unshuffled back to the layout above;
   P₀ (`initial_positions`, official `init_pos`) places sub-pixel (a, b) at ((b − (s−1)/2)/s, (a − (s−1)/2)/s),
   i.e. ±0.25 for s = 2;
2. sampling positions (w + O_x, h + O_y) in input-pixel units (pixel centres at integers), pixel-shuffled so
   sub-pixel (a, b) of low-resolution pixel (h, w) lands at output (s·h + a, s·w + b);
3. out = grid_sample of channel group g (channels [g·C/G, (g+1)·C/G)) at its group's positions: bilinear,
   `align_corners=False`, border padding. Positions are normalised as 2(w + 0.5 + O_x)/W − 1.

With zero offsets (offset conv zeroed) the positions are (w ∓ 0.25, h ∓ 0.25), clamped at the border: exactly
`F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)`.

Parameters ('lp', G = 4, s = 2): 32C + 32, DySample+ adds 32C (bias-free scope); on the A2U matting decoder
(C = 256, 128, 64, 64) +16,512 and +32,896 (spec §4.3). 'pl': 2G·C/s² + 2G, the scope 2G·C/s² more.

Hyper-parameters: `scale_factor` (official: scale), `up_group` (groups: channel groups with their own sampling
points), `style` ('lp' or 'pl'), `dyscope` (dyscope).

Initialisation (official): offset weights N(0, 0.001²), zero bias; scope weights zero (bias-free since the
official commit efcf8ae). `keeps_own_init = True` asks the matting network not to overwrite it with its spec-5.3
conv init (xavier-normal, gain √2), under which the initial offsets reach tens of pixels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import MODELS


@MODELS.register_module(name="DySample")
class DySample(nn.Module):
    """Point-sampling ×s upsampler: per-group learnt offsets around the bilinear positions, `grid_sample`.

    Args:
        in_channels (int): C (official: in_channels); divisible by `up_group` (and by s² for 'pl').
        scale_factor (int): s (official: scale). Default: 2.
        style (str): 'lp' (linear then pixel shuffle) or 'pl' (pixel shuffle then linear). Default: 'lp'.
        up_group (int): G, channel groups with their own offsets (official: groups). Default: 4.
        dyscope (bool): dynamic scope, DySample+ (official: dyscope). Default: False.
    """

    #: Accepted `style` values.
    STYLES = ("lp", "pl")
    #: Networks that re-initialise every conv (the A2U matting network's spec-5.3 rule) leave DySample's alone:
    #: its tiny initial offsets are what make it start as bilinear upsampling.
    keeps_own_init = True
    #: Static range factor of the offsets (official constant) and the dynamic scope's maximum.
    STATIC_SCOPE, DYNAMIC_SCOPE = 0.25, 0.5

    def __init__(self, in_channels: int, scale_factor: int = 2, style: str = "lp", up_group: int = 4,
                 dyscope: bool = False) -> None:
        super().__init__()
        if style not in self.STYLES:
            raise ValueError(f"style must be one of {self.STYLES}, got {style!r}")
        if not isinstance(scale_factor, int) or isinstance(scale_factor, bool) or scale_factor < 1:
            raise ValueError(f"scale_factor must be a positive int, got {scale_factor!r}")
        if not isinstance(up_group, int) or up_group < 1 or in_channels % up_group:
            raise ValueError(f"up_group must be a positive divisor of in_channels {in_channels}, got {up_group!r}")
        s2 = scale_factor * scale_factor
        if style == "pl" and in_channels % s2:
            raise ValueError(f"style 'pl' needs in_channels divisible by scale_factor² = {s2}, got {in_channels}")
        self.in_channels, self.scale_factor, self.style = in_channels, scale_factor, style
        self.up_group, self.dyscope = up_group, bool(dyscope)
        conv_in, conv_out = (in_channels, 2 * up_group * s2) if style == "lp" else (in_channels // s2, 2 * up_group)
        self.offset = nn.Conv2d(conv_in, conv_out, 1)
        self.scope = nn.Conv2d(conv_in, conv_out, 1, bias=False) if self.dyscope else None
        self.init_weights()

    def initial_positions(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
                          ) -> torch.Tensor:
        """P₀ (1, 2·G·s², 1, 1): channel comp·G·s² + g·s² + a·s + b holds h[b] (comp 0, x) or h[a] (comp 1, y),
        h = (arange(s) − (s − 1)/2) / s. (The official module keeps it as a float32 buffer `init_pos`; made in
        the offsets' dtype here, so float64 checks at s = 3 are not limited by float32's 1/3.)"""
        s, g = self.scale_factor, self.up_group
        h = (torch.arange(s, dtype=torch.float64) - (s - 1) / 2) / s
        x_pos = h.repeat(s)                                  # index a·s + b -> h[b]
        y_pos = h.repeat_interleave(s)                       # index a·s + b -> h[a]
        return torch.cat([x_pos.repeat(g), y_pos.repeat(g)]).view(1, -1, 1, 1).to(dtype=dtype, device=device)

    def init_weights(self) -> None:
        """Official init: offset weights N(0, 0.001²), bias 0; scope weights 0."""
        nn.init.normal_(self.offset.weight, std=0.001)
        nn.init.zeros_(self.offset.bias)
        if self.scope is not None:
            nn.init.zeros_(self.scope.weight)

    def offsets(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w -> offsets O N×(2·G·s²)×h×w in low-resolution pixels (P₀ included), at least float32."""
        s = self.scale_factor
        source = x if self.style == "lp" else F.pixel_shuffle(x, s)
        raw = self.offset(source)
        raw = raw.to(torch.promote_types(raw.dtype, torch.float32))          # positions in ≥ float32 (autocast)
        if self.scope is None:
            raw = raw * self.STATIC_SCOPE
        else:
            raw = raw * (torch.sigmoid(self.scope(source)) * self.DYNAMIC_SCOPE)
        if self.style == "pl":
            raw = F.pixel_unshuffle(raw, s)
        return raw + self.initial_positions(raw.dtype, raw.device)

    def sample(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w sampled at the positions `offsets` (N×2Gs²×h×w) describe -> N×C×sh×sw.

        Positions are built in at least float32 (the official code builds them in x's dtype, which under fp16
        loses about a quarter pixel at large widths) and x is sampled in that dtype; the output has x's dtype.
        """
        n, c, h, w = x.shape
        s, g = self.scale_factor, self.up_group
        dtype = torch.promote_types(offsets.dtype, torch.float32)            # fp16 positions drift at large w
        cols = torch.arange(w, dtype=dtype, device=x.device) + 0.5          # pixel centres, input-pixel units
        rows = torch.arange(h, dtype=dtype, device=x.device) + 0.5
        o = offsets.to(dtype).reshape(n, 2, g * s * s, h, w)
        px = (cols.view(1, 1, 1, w) + o[:, 0]) * (2.0 / w) - 1             # N×Gs²×h×w, normalised to [-1, 1]
        py = (rows.view(1, 1, h, 1) + o[:, 1]) * (2.0 / h) - 1
        grid = F.pixel_shuffle(torch.cat([px, py], dim=1), s)                # N×2G×sh×sw: (x of g…, y of g…)
        grid = grid.reshape(n, 2, g, s * h, s * w).permute(0, 2, 3, 4, 1).reshape(n * g, s * h, s * w, 2)
        out = F.grid_sample(x.reshape(n * g, c // g, h, w).to(dtype), grid, mode="bilinear",
                            padding_mode="border", align_corners=False)
        return out.reshape(n, c, s * h, s * w).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w -> N×C×sh×sw."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"DySample: x must be N×{self.in_channels}×h×w, got {tuple(x.shape)}")
        return self.sample(x, self.offsets(x))
