"""Operator pairs: the paired down/up interface, its registry helpers and the registered pairs.

A pair is an `nn.Module` built from `OPERATOR_PAIRS` by name (see `PAIR_NAMES`), for a feature with `channels`
channels:

    pair = build_pair('a2u', channels=64)
    low, state = pair.down(x)          # x: N×C×H×W  ->  low: N×(C·f)×H/2×W/2, state: whatever up() needs
    ...
    y = pair.up(z, state)              # z: N×(C)×h×w (decoder feature at the low resolution) -> N×C'×2h×2w

`down_channel_factor` is 4 for space-to-depth (pixelshuffle) and 1 otherwise; `up()` then returns
`C // up_channel_divisor` channels. A pair may ignore `state` (bilinear, nearest, CARAFE) or require it
(max-unpool indices, IndexNet decoder index, A2U kernels). Pairs take extra keyword arguments (e.g.
`build_pair('bilinear', 64, down='maxpool')`, `build_pair('a2u', 64, rank=2)`); unknown ones raise ValueError
listing the accepted ones.

The nine pairs of toy_protocol.md, registered in `OPERATOR_PAIRS` under `PAIR_NAMES`:

| name | down(x) -> (low, state) | up(z, state) |
|---|---|---|
| nearest, bilinear | 2×2 avg-pool (or `down='maxpool'`: 2×2 max-pool, the matting baseline) | interpolation ×2 |
| deconv | conv 3×3 s2 + BN + ReLU | ConvTranspose 3×3 s2 p1 op1 + BN + ReLU |
| pixelshuffle | space-to-depth (C -> 4C) | depth-to-space (C -> C/4) |
| maxunpool | 2×2 max-pool, state = indices | max-unpool with the indices |
| carafe | 2×2 avg-pool (`down=` as above) | CARAFE (k_up=5, k_enc=3) |
| indexnet | index-weighted pooling (depthwise M2O), state = decoder index | index ⊙ nearest(z) |
| a2u, a2u-unshared | A2D with generator kernels, state = paired up kernels | A2U with those kernels |

Ablation pairs (A2U's alternative implementations; registered, but not in `PAIR_NAMES`, so the default toy and
matting lists do not run them; name them explicitly, e.g. `-S 'toy.operators=[a2u,a2u-avgpool]'`). Each
changes one thing against `a2u` (shared u, v, rank d=1, up kernel s=3, A2D window 2s=6, encoder kernel k=6):

| name | down(x) -> (low, state) | up(z, state) | params at C=64 |
|---|---|---|---|
| a2u-avgpool | 2×2 avg-pool; state = up kernels from the encoder feature x (generator without P_down) | A2U with those kernels | 2,726 |
| a2u-maxpool | 2×2 max-pool; state as a2u-avgpool | A2U with those kernels | 2,726 |
| a2u-self | 2×2 avg-pool, no state | self-guided A2U: kernels from the decoder feature z itself (stride-1 u, v) | 2,726 |
| a2u-d2 | A2D, rank d = 2 | A2U, rank 2 | 9,876 |
| a2u-s1 | A2D with a 2×2 window (s = 1) | A2U with 1×1 kernels (a sigmoid gate on nearest) | 906 |
| a2u-s5 | A2D with a 10×10 window (s = 5) | A2U with 5×5 kernels | 13,386 |
| a2u-softmax | A2D | A2U, up kernels normalised by softmax(L) instead of softmax(sigmoid(L)) | 5,066 |
| a2u-sumnorm | A2D | A2U, up kernels normalised by sigmoid(L) / Σ sigmoid(L) | 5,066 |

(`a2u-unshared` is the channel-wise ablation of u, v.) The `down=` keyword of a2u-avgpool / a2u-self picks
'avgpool' or 'maxpool' as for the interpolation pairs (a2u-maxpool is a2u-avgpool with `down='maxpool'`).
a2u-softmax and a2u-sumnorm (`a2u` with another `up_norm`, see `A2UKernelGenerator`) lift the official bound
[0.044, 0.254] on every s = 3 up weight; their down kernels and parameters are `a2u`'s (`UP_NORM_PAIR_NAMES`).

A2U's successors (`SUCCESSOR_PAIR_NAMES`; registered, not in `PAIR_NAMES`, so they run only when named, e.g.
`-S 'train.variants=[fade,sapa,dysample]'`), placed as their authors placed them on the A2U matting codebase: every
downsampling a 2×2 max-pool (`down='avgpool'` switches), every upsampling the successor. FADE and SAPA are guided
by the encoder feature before the paired downsampling (the state, as the guide of A2U); DySample, which its
authors never ran on matting, is decoder-only. Parameters at C=64 (operator alone = the pair), and over bilinear
in the A2U matting network at width 1 (C = 256, 128, 64, 64):

| name | down(x) -> (low, state) | up(z, state) | params at C=64 | matting net |
|---|---|---|---|---|
| fade | 2×2 max-pool; state = x | `FADE(z, x)`: semi-shift kernels (d=64, k_up=5), CARAFE, gate | 22,746 | +124,008 |
| fade-lite | as fade | `FADE(lite=True)`: depthwise kernel generator (d=25) | 3,540 | +27,216 |
| sapa | as fade | `SAPA(z, x)`: SAPA-B, LN'd q/k (d=64), 5×5 similarity, softmax, reassembly | 8,576 | +68,096 |
| sapa-g | as fade | `SAPA(q_mode='gate')`: SAPA-G, gated encoder/decoder query | 12,801 | +101,636 |
| dysample | 2×2 max-pool, no state | `DySample(z)`: 'lp', 4 groups, static scope 0.25 | 2,080 | +16,512 |
| dysample-plus | as dysample | `DySample(dyscope=True)`: DySample+ | 4,128 | +32,896 |

(SAPA's matting settings are unpublished; `compressed_channels=32` gives +35,072 / +52,100, the d the SAPA
README's "+0.04M" for SAPA-B fits.)
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.a2u import A2D, A2U, A2UKernelGenerator
from models.ops.basic import DeconvUp, MaxPoolDown, StridedConvDown, max_unpool2x
from models.ops.carafe import CARAFETorch
from models.ops.dysample import DySample
from models.ops.fade import FADE
from models.ops.indexnet import IndexNetDown, IndexNetUp
from models.ops.kernels import a2u_upsample
from models.ops.sapa import SAPA
from models.registry import OPERATOR_PAIRS

#: Pair names as in `toy_protocol.md`, in table order.
PAIR_NAMES = ("nearest", "bilinear", "deconv", "pixelshuffle", "maxunpool", "carafe", "indexnet", "a2u",
              "a2u-unshared")
#: A2U's alternative implementations (ablations), registered but run only when named.
ABLATION_PAIR_NAMES = ("a2u-avgpool", "a2u-maxpool", "a2u-self", "a2u-d2", "a2u-s1", "a2u-s5", "a2u-softmax",
                       "a2u-sumnorm")
#: Ablations of A2U's up-kernel normalisation (`up_norm`), registered but run only when named.
#: The ablations of the up-kernel normalisation (softmax over sigmoid outputs in the official code).
UP_NORM_PAIR_NAMES = ("a2u-softmax", "a2u-sumnorm")
#: A2U's successors (FADE, SAPA, DySample), registered but run only when named.
SUCCESSOR_PAIR_NAMES = ("fade", "fade-lite", "sapa", "sapa-g", "dysample", "dysample-plus")


class OperatorPair(nn.Module):
    """Base class: subclasses implement `down` and `up`."""

    down_channel_factor: int = 1
    up_channel_divisor: int = 1

    def __init__(self, channels: int) -> None:
        super().__init__()
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        self.channels = channels

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def pair_keywords(name: str) -> tuple[str, ...]:
    """Keyword arguments (besides `channels`) that the pair `name` accepts."""
    cls = OPERATOR_PAIRS.get(name)
    params = inspect.signature(cls.__init__).parameters
    return tuple(p for p in params if p not in ("self", "channels"))


def build_pair(name: str, channels: int, **kwargs: Any) -> OperatorPair:
    """Build a registered operator pair by name; unknown names or keywords raise ValueError listing the known ones."""
    if name not in OPERATOR_PAIRS.module_dict:
        known = ", ".join(sorted(OPERATOR_PAIRS.module_dict))
        raise ValueError(f"unknown operator pair {name!r}; known pairs: {known}")
    accepted = pair_keywords(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"operator pair {name!r} got unknown keyword(s) {unknown}; accepted: {list(accepted)}")
    return OPERATOR_PAIRS.build(dict(type=name, channels=channels, **kwargs))


class PairRoundTrip(nn.Module):
    """One module for a pair's down and up pass, for export and parity checks.

    forward(x, z) = (pair.down(x)[0], pair.up(z, pair.down(x)[1])): x N×C×H×W, z N×C×(H/2)×(W/2) -> the
    N×C×(H/2)×(W/2) downsampled x and the N×C×H×W upsampled z (A2U with the kernels A2D's generator made from x).
    """

    def __init__(self, pair: OperatorPair) -> None:
        super().__init__()
        self.pair = pair

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low, state = self.pair.down(x)
        return low, self.pair.up(z, state)


def count_parameters(module: nn.Module) -> int:
    """Number of learnable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


#: Parameter-free downsamplers selectable with the `down` keyword of interpolation-style pairs.
POOLING_DOWNSAMPLERS = ("avgpool", "maxpool")


class _PooledPair(OperatorPair):
    """Base of pairs whose encoder side is a parameter-free 2×2 pooling (`down`: 'avgpool' or 'maxpool')."""

    def __init__(self, channels: int, down: str = "avgpool") -> None:
        super().__init__(channels)
        if down not in POOLING_DOWNSAMPLERS:
            raise ValueError(f"down must be one of {POOLING_DOWNSAMPLERS}, got {down!r}")
        self.down_mode = down

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"{type(self).__name__}.down: x must have even H, W, got {tuple(x.shape)}")
        return (F.avg_pool2d(x, 2) if self.down_mode == "avgpool" else F.max_pool2d(x, 2)), None


@OPERATOR_PAIRS.register_module(name="nearest")
class NearestPair(_PooledPair):
    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


@OPERATOR_PAIRS.register_module(name="bilinear")
class BilinearPair(_PooledPair):
    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


@OPERATOR_PAIRS.register_module(name="carafe")
class CarafePair(_PooledPair):
    """Avg-pool down, CARAFE up; extra keywords go to `CARAFETorch` (up_kernel, encoder_kernel, ...)."""

    def __init__(self, channels: int, down: str = "avgpool", up_kernel: int = 5, up_group: int = 1,
                 encoder_kernel: int = 3, compressed_channels: int = 64) -> None:
        super().__init__(channels, down)
        self.upsampler = CARAFETorch(channels, 2, up_kernel, up_group, encoder_kernel,
                                     compressed_channels=compressed_channels)

    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return self.upsampler(x)


@OPERATOR_PAIRS.register_module(name="deconv")
class DeconvPair(OperatorPair):
    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.downsampler = StridedConvDown(channels)
        self.upsampler = DeconvUp(channels)

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.downsampler(x), None

    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return self.upsampler(x)


@OPERATOR_PAIRS.register_module(name="pixelshuffle")
class PixelShufflePair(OperatorPair):
    down_channel_factor = 4
    up_channel_divisor = 4

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"pixelshuffle.down: x must have even H, W, got {tuple(x.shape)}")
        return F.pixel_unshuffle(x, 2), None

    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        if x.shape[1] % 4:
            raise ValueError(f"pixelshuffle.up: channels {x.shape[1]} not divisible by 4")
        return F.pixel_shuffle(x, 2)


@OPERATOR_PAIRS.register_module(name="maxunpool")
class MaxUnpoolPair(OperatorPair):
    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.downsampler = MaxPoolDown()

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.downsampler.forward_with_state(x)

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return max_unpool2x(x, state)


@OPERATOR_PAIRS.register_module(name="indexnet")
class IndexNetPair(OperatorPair):
    """Keywords go to `IndexNetDown` (block_type='m2o', use_nonlinear=True, use_context=True)."""

    def __init__(self, channels: int, block_type: str = "m2o", use_nonlinear: bool = True,
                 use_context: bool = True) -> None:
        super().__init__(channels)
        self.downsampler = IndexNetDown(channels, block_type, use_nonlinear, use_context)
        self.upsampler = IndexNetUp(channels)

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.downsampler.forward_with_state(x)

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return self.upsampler(x, state)


@OPERATOR_PAIRS.register_module(name="a2u")
class A2UPair(OperatorPair):
    """A2D down (state = the paired up kernels), A2U up. Keywords as in `A2D`, plus `up_norm` (the generator's
    up-kernel normalisation, `A2UKernelGenerator.UP_NORMS`); None takes the pair's own default (`defaults`: s=3,
    d=1, shared, 'sigmoid-softmax' for `a2u`; the ablation subclasses change one of them)."""

    defaults: dict[str, Any] = {"up_kernel": 3, "rank": 1, "shared": True, "up_norm": "sigmoid-softmax"}

    def __init__(self, channels: int, up_kernel: int | None = None, up_group: int = 1, encoder_kernel: int = 6,
                 rank: int | None = None, shared: bool | None = None, norm_groups: int = 32,
                 up_norm: str | None = None) -> None:
        super().__init__(channels)
        up_kernel, rank, shared, up_norm = self._resolve(up_kernel=up_kernel, rank=rank, shared=shared,
                                                         up_norm=up_norm)
        if up_norm not in A2UKernelGenerator.UP_NORMS:       # checked before A2D draws its initial weights
            raise ValueError(f"up_norm must be one of {A2UKernelGenerator.UP_NORMS}, got {up_norm!r}")
        self.downsampler = A2D(channels, up_kernel, up_group, encoder_kernel, rank, shared, norm_groups)
        # A2D builds its generator with the default normalisation; only the up kernels read `up_norm` (no
        # parameters depend on it), so setting it afterwards equals building the generator with it.
        self.downsampler.generator.up_norm = up_norm
        self.up_kernel, self.up_group, self.up_norm = up_kernel, up_group, up_norm

    @classmethod
    def _resolve(cls, **given: Any) -> list[Any]:
        """The given keyword values, with None replaced by the class's default."""
        return [cls.defaults[name] if value is None else value for name, value in given.items()]

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.downsampler.forward_with_state(x)

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return a2u_upsample(x, state, self.up_kernel, self.up_group)


@OPERATOR_PAIRS.register_module(name="a2u-unshared")
class A2UUnsharedPair(A2UPair):
    """As `a2u` with channel-wise u, v (2C²+78C+72 parameters)."""

    defaults = {**A2UPair.defaults, "shared": False}


@OPERATOR_PAIRS.register_module(name="a2u-d2")
class A2URank2Pair(A2UPair):
    """Ablation: as `a2u` with rank d = 2 (two u, v pairs and two columns of P)."""

    defaults = {**A2UPair.defaults, "rank": 2}


@OPERATOR_PAIRS.register_module(name="a2u-s1")
class A2UKernel1Pair(A2UPair):
    """Ablation: as `a2u` with s = 1: 1×1 up kernels (a sigmoid gate on nearest upsampling), 2×2 A2D window."""

    defaults = {**A2UPair.defaults, "up_kernel": 1}


@OPERATOR_PAIRS.register_module(name="a2u-s5")
class A2UKernel5Pair(A2UPair):
    """Ablation: as `a2u` with s = 5: 5×5 up kernels, 10×10 A2D window."""

    defaults = {**A2UPair.defaults, "up_kernel": 5}


@OPERATOR_PAIRS.register_module(name="a2u-softmax")
class A2USoftmaxPair(A2UPair):
    """Ablation: as `a2u` with up kernels softmax(L): isolates the sigmoid before the softmax (weights in (0, 1))."""

    defaults = {**A2UPair.defaults, "up_norm": "softmax"}


@OPERATOR_PAIRS.register_module(name="a2u-sumnorm")
class A2USumNormPair(A2UPair):
    """Ablation: as `a2u` with up kernels sigmoid(L) / Σ sigmoid(L): keeps the sigmoid, drops the bounding softmax."""

    defaults = {**A2UPair.defaults, "up_norm": "sigmoid-sum"}


@OPERATOR_PAIRS.register_module(name="a2u-avgpool")
class A2UPooledPair(_PooledPair):
    """Ablation: plain 2×2 pooling down; A2U up with kernels generated from the encoder feature x.

    The generator is the `a2u` one without P_down (42C+38 parameters at s=3, d=1): `down(x)` returns the pooled x
    and, as state, the up kernels `generator.up_kernels(x)` (N×G·s²×H×W), which `up` uses like `a2u`'s.
    """

    default_down = "avgpool"

    def __init__(self, channels: int, down: str | None = None, up_kernel: int = 3, up_group: int = 1,
                 encoder_kernel: int = 6, rank: int = 1, shared: bool = True, norm_groups: int = 32) -> None:
        super().__init__(channels, self.default_down if down is None else down)
        self.generator = A2UKernelGenerator(channels, up_kernel, up_group, encoder_kernel, rank, shared, norm_groups,
                                            predict_down=False)
        self.up_kernel, self.up_group = up_kernel, up_group

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        low, _ = super().down(x)
        return low, self.generator.up_kernels(x, stride=2)

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return a2u_upsample(x, state, self.up_kernel, self.up_group)


@OPERATOR_PAIRS.register_module(name="a2u-maxpool")
class A2UMaxPooledPair(A2UPooledPair):
    """Ablation: as `a2u-avgpool` with 2×2 max-pooling."""

    default_down = "maxpool"


@OPERATOR_PAIRS.register_module(name="a2u-self")
class A2USelfGuidedPair(_PooledPair):
    """Ablation: plain 2×2 pooling down (no state); self-guided A2U up: kernels from the decoder feature z itself
    (`A2U.forward(z)`: stride-1 u, v correlations at z's resolution, 42C+38 parameters at s=3, d=1)."""

    def __init__(self, channels: int, down: str = "avgpool", up_kernel: int = 3, up_group: int = 1,
                 encoder_kernel: int = 6, rank: int = 1, shared: bool = True, norm_groups: int = 32) -> None:
        super().__init__(channels, down)
        self.upsampler = A2U(channels, up_kernel=up_kernel, up_group=up_group, encoder_kernel=encoder_kernel,
                             rank=rank, shared=shared, norm_groups=norm_groups)

    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return self.upsampler(x)


class _SuccessorPair(_PooledPair):
    """Base of the successor pairs: 2×2 max-pooling down (the authors' placement; `down='avgpool'` switches).

    `defaults` holds the keyword values that tell a registered variant from its base (None takes them).
    """

    defaults: dict[str, Any] = {}

    @classmethod
    def _resolve(cls, **given: Any) -> list[Any]:
        return [cls.defaults[name] if value is None else value for name, value in given.items()]


class _GuidedSuccessorPair(_SuccessorPair):
    """Pooling down whose state is the feature before pooling; up = `self.upsampler(z, that feature)`."""

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return super().down(x)[0], x

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return self.upsampler(x, state)


@OPERATOR_PAIRS.register_module(name="fade")
class FadePair(_GuidedSuccessorPair):
    """Max-pool down, state = the encoder feature x (N×C×H×W); up = `FADE(z, x)`. Keywords as in `FADE`."""

    defaults = {"lite": False}

    def __init__(self, channels: int, down: str = "maxpool", up_kernel: int = 5, up_group: int = 1,
                 encoder_kernel: int = 3, compressed_channels: int = 64, lite: bool | None = None,
                 gating: bool = True) -> None:
        super().__init__(channels, down)
        (lite,) = self._resolve(lite=lite)
        self.upsampler = FADE(channels, scale_factor=2, up_kernel=up_kernel, up_group=up_group,
                              encoder_kernel=encoder_kernel, compressed_channels=compressed_channels, lite=lite,
                              gating=gating)


@OPERATOR_PAIRS.register_module(name="fade-lite")
class FadeLitePair(FadePair):
    """As `fade` with FADE-Lite (depthwise kernel generator, 51C + 276 parameters)."""

    defaults = {"lite": True}


@OPERATOR_PAIRS.register_module(name="sapa")
class SapaPair(_GuidedSuccessorPair):
    """Max-pool down, state = the encoder feature x; up = `SAPA(z, x)` (SAPA-B). Keywords as in `SAPA`."""

    defaults = {"q_mode": "encoder_only"}

    def __init__(self, channels: int, down: str = "maxpool", up_kernel: int = 5, compressed_channels: int = 64,
                 qkv_bias: bool = True, q_mode: str | None = None) -> None:
        super().__init__(channels, down)
        (q_mode,) = self._resolve(q_mode=q_mode)
        self.upsampler = SAPA(channels, scale_factor=2, up_kernel=up_kernel,
                              compressed_channels=compressed_channels, qkv_bias=qkv_bias, q_mode=q_mode)


@OPERATOR_PAIRS.register_module(name="sapa-g")
class SapaGatedPair(SapaPair):
    """As `sapa` with SAPA-G (`q_mode='gate'`: gated encoder/decoder query)."""

    defaults = {"q_mode": "gate"}


@OPERATOR_PAIRS.register_module(name="dysample")
class DySamplePair(_SuccessorPair):
    """Max-pool down (no state); up = `DySample(z)` ('lp', 4 groups). Keywords as in `DySample`."""

    defaults = {"dyscope": False}

    def __init__(self, channels: int, down: str = "maxpool", style: str = "lp", up_group: int = 4,
                 dyscope: bool | None = None) -> None:
        super().__init__(channels, down)
        (dyscope,) = self._resolve(dyscope=dyscope)
        self.upsampler = DySample(channels, scale_factor=2, style=style, up_group=up_group, dyscope=dyscope)

    def up(self, x: torch.Tensor, state: Any = None) -> torch.Tensor:
        return self.upsampler(x)


@OPERATOR_PAIRS.register_module(name="dysample-plus")
class DySamplePlusPair(DySamplePair):
    """As `dysample` with DySample+ (dynamic scope)."""

    defaults = {"dyscope": True}
