"""A2U, affinity-aware upsampling, and A2D, its paired downsampling: the kernel generator and the modules.

Paper: Dai, Lu, Shen, "Learning Affinity-Aware Upsampling for Deep Image Matting", CVPR 2021
(https://arxiv.org/abs/2011.14288); official code dongdong93/a2u_matting (class `InterChannelUpDown`).

Three layers, as mmcv's CARAFE: `A2UKernelGenerator` (kernels, spec 2.2) -> the reassembly ops `a2u_upsample` /
`a2d_downsample` (spec 2.3-2.4, in `models/ops/kernels/`) -> the registered modules `A2U` and `A2D`.

Kernel generation, per image, from the high-resolution feature x (C×H×W):
1. pooled context: P_up, P_down = 1×1 convs of the global mean (each (2s)²·G × d); u, v = 1×1 convs of the
   k×k adaptive average pool (d filters of k×k, or d·C filters when channel-wise);
2. depthwise stride-2 correlations e_u = u ⋆ x_c, e_v = v ⋆ x_c (zero padding ⌊(k−1)/2⌋) -> C×H/2×W/2 per rank;
3. E = LeakyReLU₀.₀₁(GroupNorm₃₂(e)) for u and v (one GroupNorm each, shared by all ranks);
4. second-order embedding z_q = Σ_c E_u,q,c ⊙ E_v,q,c / √C, d×H/2×W/2;
5. logits P·z (per-image 1×1, no bias); up logits are pixel-shuffled ×2, then softmax(sigmoid(·)) over s²
   (sigmoid alone if s = 1); down logits get a softmax over (2s)².
Parameter count (s=3, k=6, d=1, G=1): 78C+74 channel-shared, 2C²+78C+72 channel-wise (spec 2.2).

Hyper-parameters use mmcv `CARAFEPack` names: `scale_factor` (r = 2), `up_kernel` (s, odd; A2D's window is
2s), `up_group` (G), `encoder_kernel` (k, window of u and v); plus `rank` (d), `shared` and `norm_groups`.

Deliberate differences from the official code (spec 9.2):
- the batch is vectorised (grouped convolution with groups = N·C, einsum) instead of a per-sample loop;
- rank d > 1 is correct: each rank's C embeddings are normalised and multiplied on their own (the official code
  concatenates ranks along the batch axis and then *views* them as channels, mixing channels and ranks);
- groups G > 1 are correct: logits are laid out (G, s², 2, 2), so after pixel shuffle channel g·s² + e is entry e
  of group g and the softmax runs over each group's s² entries — the layout the reassembly ops read (the official
  code produces (s², G) and normalises across the wrong axis);
- `embed(x, stride=1)` also exists, for the self-guided `A2U` module (window i−⌊(k−1)/2⌋ … i+⌊k/2⌋);
- `predict_down=False` omits the P_down projection for modules that only upsample;
- no CUDA extension: the reassembly is a fused C++ op on CPU, Triton kernels on CUDA, and cache-blocked PyTorch
  with an explicit backward elsewhere and as the reference (`models/ops/kernels/`);
- CPU training speed (numerics equal up to float summation order): u and v of every rank are correlated in one
  call whose backward computes the shared filters' gradient per image as one dense-convolution weight gradient;
  on CPU (eager, built) steps 3-4 are one fused C++ op (`fused_cpu.embed_product`: GroupNorm statistics, then
  z directly, the normalised maps never stored; its backward recomputes them from the saved statistics);
  the k×k pooled context and the global mean come from two GEMMs; the 1×1 convs that read the same input run as one
  convolution with concatenated weights (tracing keeps the modules' own ops, so FLOP counts are unchanged).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init
from torch.utils.checkpoint import checkpoint

from models.ops.kernels import a2d_downsample, a2u_upsample, depthwise_correlations, fused_cpu, pool_and_mean
from models.ops.kernels.common import is_tracing
from models.registry import MODELS


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def embedding_product(e_u: torch.Tensor, e_v: torch.Tensor, norm_u: nn.GroupNorm,
                      norm_v: nn.GroupNorm) -> torch.Tensor:
    """The generator's steps 3-4 in eager ops: Σ_c LeakyReLU₀.₀₁(norm_u(e_u)) · LeakyReLU₀.₀₁(norm_v(e_v)) / √C,
    e_u, e_v B×C×h×w -> B×h×w (what `fused_cpu.embed_product` computes in one pass)."""
    product = F.leaky_relu(norm_u(e_u), 0.01) * F.leaky_relu(norm_v(e_v), 0.01)
    return product.sum(dim=1) / math.sqrt(e_u.shape[1])


@MODELS.register_module()
class A2UKernelGenerator(nn.Module):
    """Low-rank bilinear kernel generator of A2U/A2D.

    Args:
        channels (int): C, channels of the guiding feature; divisible by `norm_groups` and `up_group`.
        up_kernel (int): s, odd upsampling window; the downsampling window is 2s. Default: 3.
        up_group (int): G, kernel groups (channel groups sharing one kernel). Default: 1.
        encoder_kernel (int): k, window of the u, v filters. Default: 6.
        rank (int): d, rank of the bilinear model. Default: 1.
        shared (bool): u, v shared across channels (True) or one per channel. Default: True.
        norm_groups (int): GroupNorm groups. Default: 32.
        predict_down (bool): build the P_down projection and return down kernels. Default: True.
        up_norm (str): normalisation of each up kernel over its s² taps (ablation; the down kernels always take
            a softmax): 'sigmoid-softmax' (official: softmax(sigmoid(L)), every weight in [0.044, 0.254] at
            s = 3; sigmoid alone at s = 1), 'softmax' (softmax(L)) or 'sigmoid-sum' (sigmoid(L) / Σ sigmoid(L)).
            At s = 1 the last two give the constant kernel 1. Default: 'sigmoid-softmax'.
    """

    #: Accepted values of `up_norm` (the first is the official one and the default).
    UP_NORMS = ("sigmoid-softmax", "softmax", "sigmoid-sum")

    def __init__(self, channels: int, up_kernel: int = 3, up_group: int = 1, encoder_kernel: int = 6, rank: int = 1,
                 shared: bool = True, norm_groups: int = 32, predict_down: bool = True,
                 up_norm: str = "sigmoid-softmax") -> None:
        super().__init__()
        if up_norm not in self.UP_NORMS:
            raise ValueError(f"up_norm must be one of {self.UP_NORMS}, got {up_norm!r}")
        for name, value in (("channels", channels), ("up_kernel", up_kernel), ("up_group", up_group),
                            ("encoder_kernel", encoder_kernel), ("rank", rank), ("norm_groups", norm_groups)):
            _check_positive_int(name, value)
        if up_kernel % 2 == 0:
            raise ValueError(f"up_kernel must be odd, got {up_kernel}")
        if channels % norm_groups:
            raise ValueError(f"channels {channels} not divisible by norm_groups {norm_groups}")
        if channels % up_group:
            raise ValueError(f"channels {channels} not divisible by up_group {up_group}")
        self.channels, self.up_kernel, self.up_group = channels, up_kernel, up_group
        self.encoder_kernel, self.rank, self.shared = encoder_kernel, rank, bool(shared)
        self.norm_groups, self.predict_down, self.up_norm = norm_groups, bool(predict_down), up_norm
        self.down_kernel = 2 * up_kernel
        logits = 4 * up_kernel ** 2 * up_group               # = (2s)²·G, for the up and the down kernels
        filters = rank if self.shared else rank * channels
        # Convs are created uninitialised: init_weights() draws their initial values, in this order.
        self.proj_up = skip_init(nn.Conv2d, channels, logits * rank, 1)
        self.proj_down = skip_init(nn.Conv2d, channels, logits * rank, 1) if self.predict_down else None
        self.filter_u = skip_init(nn.Conv2d, channels, filters, 1)
        self.filter_v = skip_init(nn.Conv2d, channels, filters, 1)
        self.norm_u = nn.GroupNorm(norm_groups, channels)
        self.norm_v = nn.GroupNorm(norm_groups, channels)
        self.init_weights()

    def init_weights(self) -> None:
        """PyTorch's default initialisation (convs: kaiming-uniform a=√5 weights, uniform ±1/√C biases; GroupNorm
        γ=1, β=0). The matting network re-initialises every conv afterwards (spec 5.3)."""
        for layer in (self.proj_up, self.proj_down, self.filter_u, self.filter_v, self.norm_u, self.norm_v):
            if layer is not None:
                layer.reset_parameters()

    def embed(self, x: torch.Tensor, stride: int = 2) -> torch.Tensor:
        """Second-order embedding z: x N×C×H×W -> N×d×H/stride×W/stride (stride 2: H, W even; or 1)."""
        return self._embed(x, stride)[0]

    def _embed(self, x: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z N×d×h×w, global mean of x N×C): the embedding and the context the projections P need."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"x must be N×{self.channels}×H×W, got {tuple(x.shape)}")
        if stride == 2 and (x.shape[-2] % 2 or x.shape[-1] % 2):
            raise ValueError(f"x must have even height and width, got {tuple(x.shape[-2:])}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        k, d = self.encoder_kernel, self.rank
        pooled, mean = pool_and_mean(x, k)
        filters = self._pointwise(pooled, (self.filter_u, self.filter_v))        # N×2d(·C)×k×k: u ranks, v ranks
        sets = depthwise_correlations(x, filters, k, 2 * d, stride)               # 2d × N×C×h×w
        e_u, e_v = (s[0] if d == 1 else torch.stack(s, 1).flatten(0, 1) for s in (sets[:d], sets[d:]))
        if fused_cpu.use_fused_embedding(e_u, e_v, self.norm_u, self.norm_v):   # steps 3-4 in one C++ op
            z = fused_cpu.embed_product(e_u, e_v, self.norm_u, self.norm_v)
        else:
            z = embedding_product(e_u, e_v, self.norm_u, self.norm_v)
        return z.view(x.shape[0], self.rank, *z.shape[-2:]), mean

    @staticmethod
    def _pointwise(inp: torch.Tensor, convs: tuple[nn.Conv2d, ...]) -> torch.Tensor:
        """The 1×1 convs `convs` applied to `inp` N×C×a×b, outputs concatenated along channels.

        Eager: one convolution with the weights concatenated (one call and one backward instead of one per
        conv); tracing: each module on its own, so FLOP counts see the modules.
        """
        if is_tracing():
            return torch.cat([conv(inp) for conv in convs], 1)
        weight = torch.cat([conv.weight for conv in convs])
        bias = torch.cat([conv.bias for conv in convs])
        if inp.shape[-2:] == (1, 1):
            return F.linear(inp.flatten(1), weight.flatten(1), bias)[..., None, None]
        return F.conv2d(inp, weight, bias)

    def _logits(self, p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Per-image 1×1 projection of z (N×d×h×w) by P (N×(2s)²G·d×1×1): N×(2s)²G×h×w, at least float32."""
        p = p.view(z.shape[0], -1, self.rank)
        logits = torch.einsum("nmd,ndhw->nmhw", p, z.to(p.dtype))
        return logits.to(torch.promote_types(logits.dtype, torch.float32))

    def normalise_up(self, logits: torch.Tensor) -> torch.Tensor:
        """N×(G·s²·4)×h×w logits -> N×(G·s²)×2h×2w kernels: pixel shuffle, then `up_norm` over each group's s²
        taps (default softmax(sigmoid(·)), sigmoid alone at s = 1; 'softmax'; 'sigmoid-sum')."""
        shuffled = F.pixel_shuffle(logits, 2)
        n, _, h, w = shuffled.shape
        grouped = shuffled.view(n, self.up_group, self.up_kernel ** 2, h, w)
        if self.up_norm == "softmax":
            grouped = F.softmax(grouped, dim=2)
        elif self.up_norm == "sigmoid-sum":
            grouped = torch.sigmoid(grouped)
            grouped = grouped / grouped.sum(dim=2, keepdim=True)
        else:                                                # "sigmoid-softmax", the official normalisation
            grouped = torch.sigmoid(grouped)
            if self.up_kernel > 1:
                grouped = F.softmax(grouped, dim=2)
        return grouped.view(n, -1, h, w)

    def normalise_down(self, logits: torch.Tensor) -> torch.Tensor:
        """N×(G·(2s)²)×h×w logits -> kernels with a softmax over each group's (2s)² entries."""
        n, _, h, w = logits.shape
        return F.softmax(logits.view(n, self.up_group, -1, h, w), dim=2).view(n, -1, h, w)

    def up_kernels(self, x: torch.Tensor, stride: int = 2) -> torch.Tensor:
        """Up kernels N×(G·s²)×(2H/stride)×(2W/stride) from x N×C×H×W (stride 1: self-guided, at x's size ×2)."""
        z, mean = self._embed(x, stride)
        return self.normalise_up(self._logits(self._pointwise(mean[..., None, None], (self.proj_up,)), z))

    def down_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """Down kernels N×(G·(2s)²)×H/2×W/2 only, from x N×C×H×W (H, W even)."""
        self._require_down()
        z, mean = self._embed(x, stride=2)
        return self.normalise_down(self._logits(self._pointwise(mean[..., None, None], (self.proj_down,)), z))

    def _require_down(self) -> None:
        if self.proj_down is None:
            raise ValueError("this generator was built with predict_down=False; call up_kernels() instead")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×H×W (H, W even) -> (down N×(G·(2s)²)×H/2×W/2, up N×(G·s²)×H×W), both float32, summing to 1."""
        self._require_down()
        z, mean = self._embed(x, stride=2)
        p_down, p_up = self._pointwise(mean[..., None, None], (self.proj_down, self.proj_up)).chunk(2, 1)
        return self.normalise_down(self._logits(p_down, z)), self.normalise_up(self._logits(p_up, z))


@MODELS.register_module(name="A2U")
class A2U(nn.Module):
    """Affinity-aware ×2 upsampler.

    Three ways to guide it:
    - `forward(x, kernels=K)`: given up kernels (e.g. from the paired `A2D` / generator of the encoder);
    - `forward(x, guide)`: a high-resolution guide (N×guide_channels×2h×2w) through its own generator;
    - `forward(x)`: self-guided. The generator's up path runs at x's own resolution (stride-1 u/v correlations),
      P maps to 4·s² logits per pixel, pixel shuffle gives s² kernels for each of the 2h×2w outputs. This is the
      drop-in form used by `build_upsample_layer` (mmseg/mmdet necks).
    Its generator is built with `predict_down=False` (no unused P_down), so an `A2U` has 42C+38 parameters
    (s=3, d=1, G=1, shared) plus the optional 1×1 projection.

    Args:
        in_channels (int): channels of x.
        out_channels (int, optional): if different from `in_channels`, a 1×1 ConvModule (with `norm_cfg`,
            `act_cfg`) projects x before upsampling (cheaper than after; kernels do not depend on channels).
            Default: None (= in_channels).
        scale_factor (int): must be 2. Default: 2.
        up_kernel (int): s, odd. Default: 3.
        up_group (int): G kernel groups; `out_channels` must be divisible by it. Default: 1.
        encoder_kernel (int): k. Default: 6.
        rank (int): d. Default: 1.
        shared (bool): channel-shared u, v. Default: True.
        norm_groups (int): GroupNorm groups of the generator. Default: 32.
        guide_channels (int, optional): channels of the guide feature. Default: None (= in_channels).
        with_cp (bool): gradient checkpointing of the kernel generation and reassembly. Default: False.
        norm_cfg (dict, optional): norm of the projection (mmseg's UNet passes it to every upsampler).
        act_cfg (dict, optional): activation of the projection.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, scale_factor: int = 2, up_kernel: int = 3,
                 up_group: int = 1, encoder_kernel: int = 6, rank: int = 1, shared: bool = True,
                 norm_groups: int = 32, guide_channels: int | None = None, with_cp: bool = False,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        if scale_factor != 2:
            raise ValueError(f"scale_factor must be 2 for A2U, got {scale_factor}")
        self.in_channels = in_channels
        self.out_channels = in_channels if out_channels is None else out_channels
        self.guide_channels = in_channels if guide_channels is None else guide_channels
        if self.out_channels % up_group:
            raise ValueError(f"out_channels {self.out_channels} not divisible by up_group {up_group}")
        self.scale_factor, self.up_kernel, self.up_group, self.encoder_kernel = (scale_factor, up_kernel, up_group,
                                                                                 encoder_kernel)
        self.rank, self.shared, self.norm_groups, self.with_cp = rank, shared, norm_groups, with_cp
        self.generator = A2UKernelGenerator(self.guide_channels, up_kernel, up_group, encoder_kernel, rank, shared,
                                            norm_groups, predict_down=False)
        self.projection: nn.Module | None = None
        if self.out_channels != in_channels:
            from mmcv.cnn import ConvModule  # local: keeps `import models.ops.a2u` light
            self.projection = ConvModule(in_channels, self.out_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

    def init_weights(self) -> None:
        """Re-initialise the generator, then the projection (each initialises itself when built)."""
        self.generator.init_weights()
        if self.projection is not None:
            self.projection.init_weights()

    def _upsample(self, x: torch.Tensor, guide: torch.Tensor | None, kernels: torch.Tensor | None) -> torch.Tensor:
        if kernels is None:
            if guide is None and self.guide_channels != self.in_channels:
                raise ValueError(f"A2U built with guide_channels={self.guide_channels} needs a guide feature")
            kernels = self.generator.up_kernels(x, stride=1) if guide is None else self.generator.up_kernels(guide)
        if self.projection is not None:
            x = self.projection(x)
        return a2u_upsample(x, kernels, self.up_kernel, self.up_group, self.scale_factor)

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None,
                kernels: torch.Tensor | None = None) -> torch.Tensor:
        """x N×in_channels×h×w (+ guide N×guide_channels×2h×2w or kernels N×(G·s²)×2h×2w) -> N×out×2h×2w."""
        if guide is not None and kernels is not None:
            raise ValueError("pass either guide or kernels to A2U, not both")
        if self.with_cp and self.training and x.requires_grad:
            return checkpoint(self._upsample, x, guide, kernels, use_reentrant=False)
        return self._upsample(x, guide, kernels)


@MODELS.register_module(name="A2D")
class A2D(nn.Module):
    """Affinity-aware ×2 downsampler; its generator also predicts the paired A2U up kernels.

    Args:
        in_channels (int): C (divisible by `norm_groups` and `up_group`).
        up_kernel (int): s; the downsampling window is 2s. Default: 3.
        up_group (int): G. Default: 1.
        encoder_kernel (int): k. Default: 6.
        rank (int): d. Default: 1.
        shared (bool): channel-shared u, v. Default: True.
        norm_groups (int): GroupNorm groups. Default: 32.
    """

    def __init__(self, in_channels: int, up_kernel: int = 3, up_group: int = 1, encoder_kernel: int = 6,
                 rank: int = 1, shared: bool = True, norm_groups: int = 32) -> None:
        super().__init__()
        self.in_channels, self.up_kernel, self.up_group, self.encoder_kernel = (in_channels, up_kernel, up_group,
                                                                                encoder_kernel)
        self.rank, self.shared, self.norm_groups = rank, shared, norm_groups
        self.down_kernel = 2 * up_kernel
        self.generator = A2UKernelGenerator(in_channels, up_kernel, up_group, encoder_kernel, rank, shared,
                                            norm_groups)

    def init_weights(self) -> None:
        """Re-initialise the generator (it initialises itself when built)."""
        self.generator.init_weights()

    def forward_with_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×H×W (H, W even) -> (N×C×H/2×W/2, up kernels N×(G·s²)×H×W for the paired A2U)."""
        down_kernels, up_kernels = self.generator(x)
        return a2d_downsample(x, down_kernels, self.down_kernel, self.up_group), up_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x N×C×H×W -> N×C×H/2×W/2 (the up kernels are not returned; see `forward_with_state`)."""
        down_kernels = self.generator.down_kernels(x)
        return a2d_downsample(x, down_kernels, self.down_kernel, self.up_group)
