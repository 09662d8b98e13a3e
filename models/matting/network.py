"""The A2U matting network (Dai, Lu, Shen, CVPR 2021, arXiv 2011.14288; spec 4.1), upsampler as a config choice.

    net = MODELS.build(dict(type='A2UMattingNet', upsampler='a2u'))
    alpha = net(x)        # x: (N, 4, H, W), H and W multiples of 16 -> raw alpha (N, 1, H, W), no sigmoid

One operator pair (from `OPERATOR_PAIRS`, by name) per ×2 stage: four pairs on 64, 64, 128, 256 channels
drive the encoder downsampling and, in reverse order, the decoder upsampling. Parameters: 8,049,003 for the
bilinear / max-pool baseline; +40,232 (a2u) and +220,448 (a2u-unshared).

Parameter names: `encoder.*` is the pretrained ResNet part (the official 1e-4 learning rate, layer0
included); `pairs.*` (kernel generators), `aspp.*` and `decoder.*` are new (0.01).

Initialisation (MMEngine style): building the network applies the spec-5.3 random initialisation (every
Conv2d xavier_normal, BN 1/0) so a built network is usable at once; `init_weights()` — which MMEngine's
`Runner.train()` calls before the first iteration — applies it again and then the encoder's `init_cfg`
(`encoder_init_cfg=dict(type='Pretrained', checkpoint=...)`: ImageNet ResNet-34 weights, see
`models.matting.pretrained`), so nothing overwrites the pretrained encoder. Without `encoder_init_cfg` this is
exactly the earlier plain-`nn.Module` behaviour (same draws, same order).

Deliberate choices, against the official code:
    - plain BatchNorm + LeakyReLU(0.01) instead of inplace-ABN (same parameters and maths);
    - the spec 5.3 initialisation is applied to every Conv2d of the network, the pairs' included (as the
      official `_initialize_weights` does over `named_modules()`), except inside modules that set
      `keeps_own_init` (DySample, which its authors never ran on this network);
    - a space-to-depth pair (pixel shuffle) is adapted with 1×1 convs (see `ChannelPreservingPair`).
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Mapping

import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from torch import nn

from models.matting.aspp import ASPP
from models.matting.blocks import LEAKY_SLOPE, ChannelPreservingPair
from models.matting.decoder import A2UDecoder
from models.matting.encoder import A2UResNetEncoder, scaled_channels
from models.ops.pairs import build_pair
from models.registry import MODELS, OPERATOR_PAIRS

#: Channel multiplier of the `mini` network of the CPU profiles (16, 16, 32, 64 channels at the four pairs).
MINI_WIDTH = 0.25

#: The network's output stride: H and W must be multiples of it.
OUTPUT_STRIDE = 16

#: Pair keyword arguments the matting network uses by default (the authors' settings, spec 2.1 and 4.1):
#: interpolation-style pairs keep the baseline's 2×2 max-pool encoder. `pair_cfg` entries override these.
DEFAULT_PAIR_KWARGS: dict[str, dict[str, Any]] = {
    "bilinear": {"down": "maxpool"},
    "nearest": {"down": "maxpool"},
    "carafe": {"down": "maxpool"},
    "a2u": {"up_kernel": 3, "encoder_kernel": 6},
    "a2u-unshared": {"up_kernel": 3, "encoder_kernel": 6},
}

#: xavier_normal gain of the official init: calculate_gain('leaky_relu', 0.01) = sqrt(2 / (1 + 0.01²)).
INIT_GAIN = math.sqrt(2.0 / (1.0 + LEAKY_SLOPE ** 2))


def _width_kwargs(upsampler: str, width: float) -> dict[str, Any]:
    """Narrower networks keep the channels per GroupNorm group of the paper's A2U generators (32 groups at
    width 1 -> 8 at width 0.25), for pairs that have a `norm_groups` setting."""
    cls = OPERATOR_PAIRS.get(upsampler)
    if width == 1.0 or cls is None or "norm_groups" not in inspect.signature(cls.__init__).parameters:
        return {}
    return {"norm_groups": max(1, int(round(32 * width)))}


def build_matting_pair(upsampler: str, channels: int, pair_cfg: Mapping[str, Any] | None = None,
                       width: float = 1.0) -> ChannelPreservingPair:
    """Build the registered pair `upsampler` for `channels`, with the defaults above updated by `pair_cfg`."""
    kwargs = {**DEFAULT_PAIR_KWARGS.get(upsampler, {}), **_width_kwargs(upsampler, width), **dict(pair_cfg or {})}
    return ChannelPreservingPair(build_pair(upsampler, channels=channels, **kwargs), channels)


@MODELS.register_module()
class A2UMattingNet(BaseModule):
    """ResNet-34 [3, 4, 4] encoder + ASPP + additive-skip decoder, every ×2 stage an operator pair.

    Args:
        upsampler (str): a registered operator-pair name ('bilinear', 'nearest', 'a2u', 'a2u-unshared',
            'carafe', 'indexnet', 'deconv', 'maxunpool', 'pixelshuffle', ...). Default: 'bilinear'.
        pair_cfg (Mapping | None): extra keyword arguments for every pair, overriding `DEFAULT_PAIR_KWARGS`.
            Default: None.
        aspp (bool): use the ASPP context module (the official `adobe.yaml` does). Default: True.
        in_channels (int): input channels (normalised RGB + trimap). Default: 4.
        encoder_init_cfg (dict | None): MMEngine `init_cfg` of the encoder, applied by `init_weights()`, e.g.
            `dict(type='Pretrained', checkpoint='https://download.pytorch.org/models/resnet34-b627a593.pth')`
            (torchvision, official or own ResNet-34 keys; a local file or an https URL). Default: None (random).
        init_cfg (dict | list[dict] | None): MMEngine `init_cfg` of the whole network, applied by
            `init_weights()` after the spec-5.3 init and the encoder's. Default: None.
        positive_head_init (bool): flip the sign of the last conv's initial weights when they sum to < 0, so the
            raw alpha starts positively related to the head's (BN + LeakyReLU) activation. With the plain spec-5.3
            draw about half the seeds start anti-correlated and a random-encoder run of a few hundred iterations
            stays at the trimap-only level (alpha ≤ 0 everywhere; measured, README "Matting at CPU scale"). It
            consumes no random draws. The CPU profiles set it; the paper profile keeps the plain init. Default:
            False.
        width (float): channel multiplier of every layer; 1 is the paper's network. The CPU profiles use
            `MINI_WIDTH` (the same architecture at a quarter of the channels, labelled "mini" in every report):
            random-init training at CPU budgets does not learn at full width. Default: 1.0.
    """

    def __init__(self, upsampler: str = "bilinear", pair_cfg: Mapping[str, Any] | None = None, aspp: bool = True,
                 in_channels: int = 4, encoder_init_cfg: dict | None = None,
                 init_cfg: dict | list[dict] | None = None, width: float = 1.0,
                 positive_head_init: bool = False) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(upsampler, str):
            raise TypeError(f"upsampler must be a pair name (str), got {type(upsampler).__name__}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        self.upsampler = upsampler
        self.in_channels = in_channels
        self.width = width
        self.positive_head_init = bool(positive_head_init)
        channels = scaled_channels(width)
        self.pairs = nn.ModuleList(build_matting_pair(upsampler, c, pair_cfg, width) for c in channels)
        self.encoder = A2UResNetEncoder(in_channels, init_cfg=encoder_init_cfg, width=width)
        self.aspp = ASPP(channels[3], channels[3], branch_channels=channels[3]) if aspp else None
        self.decoder = A2UDecoder(in_channels, channels=channels)
        self.spec_init()

    def init_weights(self) -> None:
        """MMEngine initialisation: the spec-5.3 init, then the encoder's `init_cfg` (pretrained), then `init_cfg`."""
        self.spec_init()
        self.encoder.init_weights()
        if self.init_cfg:
            initialize(self, self.init_cfg)
        self._is_init = True

    def spec_init(self) -> None:
        """Spec 5.3: every Conv2d xavier_normal (gain sqrt(2/(1+0.01²))) with zero bias; BN γ=1, β=0.

        Modules that set `keeps_own_init = True` (DySample: its N(0, 0.001²) offsets start it as bilinear, where
        this init would scatter its sampling points by tens of pixels) keep the initialisation they were built with.
        """
        kept = {id(m) for owner in self.modules() if getattr(owner, "keeps_own_init", False) for m in owner.modules()}
        for module in self.modules():
            if id(module) in kept:
                continue
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight, gain=INIT_GAIN)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        last = self.decoder.pred[-1].weight                      # the 1→1 3×3 conv that gives the raw alpha
        if self.positive_head_init and float(last.detach().sum()) < 0:
            with torch.no_grad():
                last.neg_()

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be N×{self.in_channels}×H×W, got {tuple(x.shape)}")
        if x.shape[-2] % OUTPUT_STRIDE or x.shape[-1] % OUTPUT_STRIDE:
            raise ValueError(f"input H and W must be multiples of {OUTPUT_STRIDE} (pad first), "
                             f"got {tuple(x.shape[-2:])}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> raw alpha (N, 1, H, W)."""
        self._check_input(x)
        features = self.encoder(x, self.pairs)
        context = features.l3 if self.aspp is None else self.aspp(features.l3)
        return self.decoder(context, features, x, self.pairs)
