"""ResNet-34 encoder of the A2U matting network, cut to [3, 4, 4] blocks (spec 4.1, rows 0–9).

Every ×2 stage is delegated to an operator pair (`pairs[i].down`), in this order:
    0. the stem conv's stride (layer0 is a 7×7 conv at stride 1), on 64 × H;
    1. the stem max-pool, on 64 × H/2;
    2. the stride of layer2's first 3×3 conv (after conv1, 128 × H/4);
    3. the same in layer3 (256 × H/8).
The states come back so the decoder can consume them in reverse order. Output stride is 16.

Pretrained ImageNet weights are an MMEngine `init_cfg`: `A2UResNetEncoder(init_cfg=dict(type='Pretrained',
checkpoint=...))` loads them in `init_weights()` (which MMEngine's `Runner.train()` calls), through MMEngine's
`PretrainedInit`; a load-state-dict pre-hook converts torchvision and official (mapillary) ResNet-34 keys, widens
the stem to the trimap channel (zero) and refuses a partial load. Formats, key map and the download cache:
`models.matting.pretrained`. `load_encoder_weights(encoder, path)` does the same for a local file by hand.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from torch import nn

from models.matting.blocks import BasicBlock, PairDownsamplingBlock, conv_abn
from models.matting.pretrained import (EncoderWeightsError, LoadReport, convert_on_load, ensure_cached, is_url,
                                       map_official_resnet34, map_torchvision_resnet34)

__all__ = ["A2UResNetEncoder", "EncoderFeatures", "PAIR_CHANNELS", "load_encoder_weights", "scaled_channels",
           "map_official_resnet34", "map_torchvision_resnet34"]

#: Channels of the feature each of the four pairs downsamples (and later upsamples), at width 1 (the paper's).
PAIR_CHANNELS = (64, 64, 128, 256)


def scaled_channels(width: float) -> tuple[int, int, int, int]:
    """`PAIR_CHANNELS` times `width` (each rounded, at least 8): (64, 64, 128, 256) at 1, (16, 16, 32, 64) at 0.25."""
    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1] (1 = the paper's ResNet-34 widths), got {width}")
    return tuple(max(8, int(round(c * width))) for c in PAIR_CHANNELS)  # type: ignore[return-value]


class EncoderFeatures(NamedTuple):
    """Encoder outputs for an (N, 4, H, W) input. `states[i]` belongs to `pairs[i]`."""

    l0p: torch.Tensor  # (N, 64, H/2, W/2), skip for dec2
    l1: torch.Tensor  # (N, 64, H/4, W/4), skip for dec3
    l2: torch.Tensor  # (N, 128, H/8, W/8), skip for dec4
    l3: torch.Tensor  # (N, 256, H/16, W/16), input of the ASPP
    states: tuple[Any, Any, Any, Any]


class A2UResNetEncoder(BaseModule):
    """ResNet-34 layers 0–3 ([3, 4, 4] basic blocks) with pair-driven downsampling.

    Args:
        in_channels (int): input channels (RGB + trimap). Default: 4.
        num_blocks (Sequence[int]): basic blocks in layer1/2/3, each counting layer2/3's downsampling block.
            Default: (3, 4, 4).
        init_cfg (dict | list[dict] | None): MMEngine initialisation, applied by `init_weights()`; typically
            `dict(type='Pretrained', checkpoint=<file or https URL>)` (torchvision, official or own keys).
            None: the network's spec-5.3 random initialisation stays. Default: None.
        width (float): channel multiplier of every layer (`scaled_channels`); 1 is ResNet-34's (the paper's),
            and only width 1 can load ImageNet weights. Default: 1.0.
    """

    def __init__(self, in_channels: int = 4, num_blocks: Sequence[int] = (3, 4, 4),
                 init_cfg: dict | list[dict] | None = None, width: float = 1.0) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(num_blocks) != 3 or min(num_blocks) < 1:
            raise ValueError(f"num_blocks must be three positive ints, got {tuple(num_blocks)}")
        if width != 1.0 and init_cfg:
            raise ValueError(f"width {width}: pretrained ResNet-34 weights (init_cfg) need width 1")
        self.in_channels = in_channels
        self.num_blocks = tuple(num_blocks)
        self.width = width
        c0, _, c2, c3 = scaled_channels(width)
        self.layer0 = conv_abn(in_channels, c0, 7)
        self.layer1 = nn.Sequential(*[BasicBlock(c0) for _ in range(num_blocks[0])])
        self.layer2_1 = PairDownsamplingBlock(c0, c2)
        self.layer2_2 = nn.Sequential(*[BasicBlock(c2) for _ in range(num_blocks[1] - 1)])
        self.layer3_1 = PairDownsamplingBlock(c2, c3)
        self.layer3_2 = nn.Sequential(*[BasicBlock(c3) for _ in range(num_blocks[2] - 1)])
        #: What the last pretrained load did (None: random init); set by the conversion pre-hook.
        self.pretrained_report: LoadReport | None = None
        self._pretrained_loading: str | None = None
        self.register_load_state_dict_pre_hook(convert_on_load)

    def _init_cfgs(self) -> tuple[list[dict], list[dict]]:
        cfgs = [] if not self.init_cfg else [self.init_cfg] if isinstance(self.init_cfg, dict) else list(self.init_cfg)
        pretrained = [dict(c) for c in cfgs if c.get("type") == "Pretrained"]
        if len(pretrained) > 1:
            raise ValueError(f"encoder init_cfg names {len(pretrained)} 'Pretrained' checkpoints; give one")
        return [dict(c) for c in cfgs if c.get("type") != "Pretrained"], pretrained

    def init_weights(self) -> None:
        """Apply `init_cfg` with MMEngine's initialisers; a 'Pretrained' checkpoint must fill the whole encoder.

        The random spec-5.3 initialisation of the convs is the network's (`A2UMattingNet.init_weights`, which
        calls this afterwards); this method never re-randomises (MMEngine's default recursion would re-run mmcv
        `ConvModule.init_weights`, a kaiming init). An https checkpoint is fetched into torch.hub's cache first
        (rank 0, hash-checked), then MMEngine's `PretrainedInit` loads it. Logs which weights were loaded and how
        many tensors matched, or "encoder: random init".
        """
        others, pretrained = self._init_cfgs()
        if others:
            initialize(self, others)
        if not pretrained:
            self.pretrained_report = None
            print_log("encoder: random init (spec 5.3: xavier_normal convs, BN weight 1 / bias 0; no 'Pretrained' "
                      "init_cfg)", logger="current")
            return
        checkpoint = str(pretrained[0]["checkpoint"])
        if is_url(checkpoint):
            rank, world_size = get_dist_info()
            if rank == 0:
                ensure_cached(checkpoint)
            if world_size > 1:
                barrier()
        self.pretrained_report, self._pretrained_loading = None, checkpoint
        try:
            initialize(self, pretrained)  # MMEngine's PretrainedInit -> load_checkpoint -> convert_on_load
        finally:
            self._pretrained_loading = None
        if self.pretrained_report is None:
            raise EncoderWeightsError(f"{checkpoint}: nothing was loaded into the encoder (check the init_cfg's "
                                      f"'prefix')")
        print_log(self.pretrained_report.line(), logger="current")
        self._is_init = True

    def forward(self, x: torch.Tensor, pairs: Sequence[nn.Module]) -> EncoderFeatures:
        """Encode (N, in_channels, H, W) with H, W multiples of 16; `pairs` are the four stage pairs."""
        l0p, state0 = pairs[0].down(self.layer0(x))
        l0pp, state1 = pairs[1].down(l0p)
        l1 = self.layer1(l0pp)
        l2p, state2 = self.layer2_1(l1, pairs[2].down)
        l2 = self.layer2_2(l2p)
        l3p, state3 = self.layer3_1(l2, pairs[3].down)
        l3 = self.layer3_2(l3p)
        return EncoderFeatures(l0p, l1, l2, l3, (state0, state1, state2, state3))


def load_encoder_weights(encoder: A2UResNetEncoder, path: str | Path) -> LoadReport:
    """Load a local ResNet-34 checkpoint (torchvision, official or own keys) into `encoder`, in place.

    The same conversion and completeness check as the `init_cfg` path; returns its `LoadReport`. Raises
    FileNotFoundError for a missing file and `EncoderWeightsError` (a ValueError) naming the file for a mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {str(path)!r} does not exist")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise EncoderWeightsError(f"encoder weights file {str(path)!r} does not hold a state_dict of tensors")
    encoder._pretrained_loading = str(path)
    try:
        encoder.load_state_dict(loaded, strict=True)
    finally:
        encoder._pretrained_loading = None
    assert encoder.pretrained_report is not None
    return encoder.pretrained_report
