"""What each benchmarked operator pair actually runs, for the report's labels (`details/operators.json`).

The bench builds pairs as the matting network does (`run.matting_pair_factory`), so e.g. the nearest,
bilinear and CARAFE pairs downsample with 2×2 max pooling there, while the downsampling baseline of every
ratio is 2×2 average pooling; a figure that does not say so misleads.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from torch import nn

POOLING_LABELS = {"maxpool": "2×2 max-pool", "avgpool": "2×2 avg-pool"}


def _child(pair: nn.Module, name: str) -> str | None:
    module = getattr(pair, name, None)
    return type(module).__name__ if isinstance(module, nn.Module) else None


def describe_pair(pair: nn.Module) -> dict[str, str]:
    """{'pair': class name, 'down': what the encoder side runs, 'up': what the decoder side runs}."""
    inner = getattr(pair, "pair", pair)  # ChannelPreservingPair wraps the registered pair
    down = POOLING_LABELS.get(getattr(inner, "down_mode", ""), None) or _child(inner, "downsampler")
    up = _child(inner, "upsampler")
    return {"pair": type(inner).__name__, "down": down or type(inner).__name__, "up": up or type(inner).__name__}


def describe_pairs(factory: Callable[[str, int], nn.Module], operators: Iterable[str],
                   channels: int = 64) -> dict[str, Any]:
    """`describe_pair` for every operator as `factory` builds it (the bench's own factory)."""
    return {name: describe_pair(factory(name, channels)) for name in operators}
