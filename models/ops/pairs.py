"""The paired down/up operator interface.

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
listing the accepted ones. The pairs themselves live in `operator_pairs.py`.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

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
