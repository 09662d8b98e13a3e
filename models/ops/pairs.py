"""Operator pairs: the paired down/up interface, its registry helpers and the nine registered pairs.

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
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.ops.a2u import A2D
from models.ops.basic import DeconvUp, MaxPoolDown, StridedConvDown, max_unpool2x
from models.ops.carafe import CARAFETorch
from models.ops.indexnet import IndexNetDown, IndexNetUp
from models.ops.kernels import a2u_upsample
from models.registry import OPERATOR_PAIRS

#: Pair names as in `toy_protocol.md`, in table order.
PAIR_NAMES = ("nearest", "bilinear", "deconv", "pixelshuffle", "maxunpool", "carafe", "indexnet", "a2u",
              "a2u-unshared")


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
    """A2D down (state = the paired up kernels), A2U up. Keywords as in `A2D` (`shared`: the pair's default)."""

    shared_default = True

    def __init__(self, channels: int, up_kernel: int = 3, up_group: int = 1, encoder_kernel: int = 6, rank: int = 1,
                 shared: bool | None = None, norm_groups: int = 32) -> None:
        super().__init__(channels)
        shared = self.shared_default if shared is None else shared
        self.downsampler = A2D(channels, up_kernel, up_group, encoder_kernel, rank, shared, norm_groups)
        self.up_kernel, self.up_group = up_kernel, up_group

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return self.downsampler.forward_with_state(x)

    def up(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return a2u_upsample(x, state, self.up_kernel, self.up_group)


@OPERATOR_PAIRS.register_module(name="a2u-unshared")
class A2UUnsharedPair(A2UPair):
    """As `a2u` with channel-wise u, v (2C²+78C+72 parameters)."""

    shared_default = False
