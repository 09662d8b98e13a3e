"""A2U kernel generator (spec 2.2): paired A2D downsampling and A2U upsampling kernels from one feature.

Paper: Dai, Lu, Shen, "Learning Affinity-Aware Upsampling for Deep Image Matting", CVPR 2021
(https://arxiv.org/abs/2011.14288); official class `InterChannelUpDown` in dongdong93/a2u_matting.

Per image, from the high-resolution feature x (C×H×W):
1. pooled context: P_up, P_down = 1×1 convs of the global mean (each (2s)²·G × d); u, v = 1×1 convs of the
   k×k adaptive average pool (d filters of k×k, or d·C filters when channel-wise);
2. depthwise stride-2 correlations e_u = u ⋆ x_c, e_v = v ⋆ x_c (zero padding ⌊(k−1)/2⌋) -> C×H/2×W/2 per rank;
3. E = LeakyReLU₀.₀₁(GroupNorm₃₂(e)) for u and v (one GroupNorm each, shared by all ranks);
4. second-order embedding z_q = Σ_c E_u,q,c ⊙ E_v,q,c / √C, d×H/2×W/2;
5. logits P·z (per-image 1×1, no bias); up logits are pixel-shuffled ×2, then softmax(sigmoid(·)) over s²
   (sigmoid alone if s = 1); down logits get a softmax over (2s)².

Deliberate differences from the official code (spec 9.2):
- the batch is vectorised (grouped convolution with groups = N·C, einsum) instead of a per-sample loop;
- rank d > 1 is correct: each rank's C embeddings are normalised and multiplied on their own (the official code
  concatenates ranks along the batch axis and then *views* them as channels, mixing channels and ranks);
- groups G > 1 are correct: logits are laid out (G, s², 2, 2), so after pixel shuffle channel g·s² + e is entry e
  of group g and the softmax runs over each group's s² entries — the layout the reassembly ops read (the official
  code produces (s², G) and normalises across the wrong axis);
- `embed(x, stride=1)` also exists, for the self-guided `A2U` module (window i−⌊(k−1)/2⌋ … i+⌊k/2⌋);
- `predict_down=False` omits the P_down projection for modules that only upsample.
Parameter count (s=3, k=6, d=1, G=1): 78C+74 channel-shared, 2C²+78C+72 channel-wise (spec 2.2).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.kernels.depthwise import adaptive_avg_pool2d, depthwise_correlation
from models.registry import MODELS


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


@MODELS.register_module()
class A2UKernelGenerator(nn.Module):
    """Low-rank bilinear kernel generator of A2U/A2D.

    Args:
        channels (int): C, channels of the guiding feature; divisible by `norm_groups` and `groups`.
        up_kernel_size (int): s, odd upsampling window; the downsampling window is 2s. Default: 3.
        encode_kernel_size (int): k, window of the u, v filters. Default: 6.
        rank (int): d, rank of the bilinear model. Default: 1.
        groups (int): G, kernel groups (channel groups sharing one kernel). Default: 1.
        shared (bool): u, v shared across channels (True) or one per channel. Default: True.
        norm_groups (int): GroupNorm groups. Default: 32.
        predict_down (bool): build the P_down projection and return down kernels. Default: True.
    """

    def __init__(self, channels: int, up_kernel_size: int = 3, encode_kernel_size: int = 6, rank: int = 1,
                 groups: int = 1, shared: bool = True, norm_groups: int = 32, predict_down: bool = True) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("up_kernel_size", up_kernel_size),
                            ("encode_kernel_size", encode_kernel_size), ("rank", rank), ("groups", groups),
                            ("norm_groups", norm_groups)):
            _check_positive_int(name, value)
        if up_kernel_size % 2 == 0:
            raise ValueError(f"up_kernel_size must be odd, got {up_kernel_size}")
        if channels % norm_groups:
            raise ValueError(f"channels {channels} not divisible by norm_groups {norm_groups}")
        if channels % groups:
            raise ValueError(f"channels {channels} not divisible by groups {groups}")
        self.channels, self.up_kernel_size, self.encode_kernel_size = channels, up_kernel_size, encode_kernel_size
        self.rank, self.groups, self.shared, self.predict_down = rank, groups, bool(shared), bool(predict_down)
        self.down_kernel_size = 2 * up_kernel_size
        logits = 4 * up_kernel_size ** 2 * groups            # = (2s)²·G, for the up and the down kernels
        filters = rank if self.shared else rank * channels
        self.proj_up = nn.Conv2d(channels, logits * rank, 1)
        self.proj_down = nn.Conv2d(channels, logits * rank, 1) if self.predict_down else None
        self.filter_u = nn.Conv2d(channels, filters, 1)
        self.filter_v = nn.Conv2d(channels, filters, 1)
        self.norm_u = nn.GroupNorm(norm_groups, channels)
        self.norm_v = nn.GroupNorm(norm_groups, channels)

    def embed(self, x: torch.Tensor, stride: int = 2) -> torch.Tensor:
        """Second-order embedding z: x N×C×H×W -> N×d×H/stride×W/stride (stride 2: H, W even; or 1)."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be N×{self.channels}×H×W, got {tuple(x.shape)}")
        if stride == 2 and (x.shape[-2] % 2 or x.shape[-1] % 2):
            raise ValueError(f"x must have even height and width, got {tuple(x.shape[-2:])}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        k, d = self.encode_kernel_size, self.rank
        pooled = adaptive_avg_pool2d(x, k)
        e_u = depthwise_correlation(x, self.filter_u(pooled), k, d, stride)
        e_v = depthwise_correlation(x, self.filter_v(pooled), k, d, stride)
        e_u = F.leaky_relu(self.norm_u(e_u), 0.01)
        e_v = F.leaky_relu(self.norm_v(e_v), 0.01)
        z = (e_u * e_v).sum(dim=1) / math.sqrt(self.channels)
        return z.view(x.shape[0], self.rank, *z.shape[-2:])

    def _logits(self, proj: nn.Conv2d, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Per-image 1×1 projection of z (N×d×h×w) by P = proj(mean of x): N×(2s)²G×h×w, at least float32."""
        p = proj(x.mean(dim=(2, 3), keepdim=True)).view(x.shape[0], -1, self.rank)
        logits = torch.einsum("nmd,ndhw->nmhw", p, z.to(p.dtype))
        return logits.to(torch.promote_types(logits.dtype, torch.float32))

    def normalise_up(self, logits: torch.Tensor) -> torch.Tensor:
        """N×(G·s²·4)×h×w logits -> N×(G·s²)×2h×2w kernels: pixel shuffle, softmax(sigmoid) over s²."""
        shuffled = F.pixel_shuffle(logits, 2)
        n, _, h, w = shuffled.shape
        grouped = torch.sigmoid(shuffled.view(n, self.groups, self.up_kernel_size ** 2, h, w))
        if self.up_kernel_size > 1:
            grouped = F.softmax(grouped, dim=2)
        return grouped.view(n, -1, h, w)

    def normalise_down(self, logits: torch.Tensor) -> torch.Tensor:
        """N×(G·(2s)²)×h×w logits -> kernels with a softmax over each group's (2s)² entries."""
        n, _, h, w = logits.shape
        return F.softmax(logits.view(n, self.groups, -1, h, w), dim=2).view(n, -1, h, w)

    def up_kernels(self, x: torch.Tensor, stride: int = 2) -> torch.Tensor:
        """Up kernels N×(G·s²)×(2H/stride)×(2W/stride) from x N×C×H×W (stride 1: self-guided, at x's size ×2)."""
        return self.normalise_up(self._logits(self.proj_up, x, self.embed(x, stride)))

    def down_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """Down kernels N×(G·(2s)²)×H/2×W/2 only, from x N×C×H×W (H, W even)."""
        self._require_down()
        return self.normalise_down(self._logits(self.proj_down, x, self.embed(x, stride=2)))

    def _require_down(self) -> None:
        if self.proj_down is None:
            raise ValueError("this generator was built with predict_down=False; call up_kernels() instead")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×H×W (H, W even) -> (down N×(G·(2s)²)×H/2×W/2, up N×(G·s²)×H×W), both float32, summing to 1."""
        self._require_down()
        z = self.embed(x, stride=2)
        down = self.normalise_down(self._logits(self.proj_down, x, z))
        up = self.normalise_up(self._logits(self.proj_up, x, z))
        return down, up
