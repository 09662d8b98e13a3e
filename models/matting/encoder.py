"""ResNet-34 encoder of the A2U matting network, cut to [3, 4, 4] blocks (spec 4.1, rows 0–9).

Every ×2 stage is delegated to an operator pair (`pairs[i].down`), in this order:
    0. the stem conv's stride (layer0 is a 7×7 conv at stride 1), on 64 × H;
    1. the stem max-pool, on 64 × H/2;
    2. the stride of layer2's first 3×3 conv (after conv1, 128 × H/4);
    3. the same in layer3 (256 × H/8).
The states come back so the decoder can consume them in reverse order. Output stride is 16.

`load_encoder_weights` loads a local ResNet-34 checkpoint: either this encoder's own state_dict or
torchvision-style `resnet34` keys. The stride-2 stem weights are reused at stride 1 and extra input channels
(the trimap) get zero weights; layer3 blocks 4–5, layer4 and fc have no target and are dropped (as the
official code drops mapillary's mod4.block5/6 and mod5). Nothing is downloaded.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn

from models.matting.blocks import BasicBlock, PairDownsamplingBlock, conv_abn

#: Channels of the feature each of the four pairs downsamples (and later upsamples).
PAIR_CHANNELS = (64, 64, 128, 256)


class EncoderFeatures(NamedTuple):
    """Encoder outputs for an (N, 4, H, W) input. `states[i]` belongs to `pairs[i]`."""

    l0p: torch.Tensor  # (N, 64, H/2, W/2), skip for dec2
    l1: torch.Tensor  # (N, 64, H/4, W/4), skip for dec3
    l2: torch.Tensor  # (N, 128, H/8, W/8), skip for dec4
    l3: torch.Tensor  # (N, 256, H/16, W/16), input of the ASPP
    states: tuple[Any, Any, Any, Any]


class A2UResNetEncoder(nn.Module):
    """ResNet-34 layers 0–3 ([3, 4, 4] basic blocks) with pair-driven downsampling.

    Args:
        in_channels (int): input channels (RGB + trimap). Default: 4.
        num_blocks (Sequence[int]): basic blocks in layer1/2/3, each counting layer2/3's downsampling block.
            Default: (3, 4, 4).
    """

    def __init__(self, in_channels: int = 4, num_blocks: Sequence[int] = (3, 4, 4)) -> None:
        super().__init__()
        if len(num_blocks) != 3 or min(num_blocks) < 1:
            raise ValueError(f"num_blocks must be three positive ints, got {tuple(num_blocks)}")
        self.in_channels = in_channels
        self.num_blocks = tuple(num_blocks)
        self.layer0 = conv_abn(in_channels, 64, 7)
        self.layer1 = nn.Sequential(*[BasicBlock(64) for _ in range(num_blocks[0])])
        self.layer2_1 = PairDownsamplingBlock(64, 128)
        self.layer2_2 = nn.Sequential(*[BasicBlock(128) for _ in range(num_blocks[1] - 1)])
        self.layer3_1 = PairDownsamplingBlock(128, 256)
        self.layer3_2 = nn.Sequential(*[BasicBlock(256) for _ in range(num_blocks[2] - 1)])

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


_TV_BLOCK = re.compile(r"^layer([123])\.(\d+)\.(.+)$")
_TV_PARTS = {"conv1.weight": "conv1.conv.weight", "conv2.weight": "conv2.conv.weight",
             "downsample.0.weight": "shortcut.conv.weight"}
_TV_NORMS = {"bn1.": "conv1.bn.", "bn2.": "conv2.bn.", "downsample.1.": "shortcut.bn."}


def _map_block_suffix(suffix: str) -> str | None:
    """torchvision block-internal name -> ours (`conv1.weight` -> `conv1.conv.weight`, `bn1.x` -> `conv1.bn.x`)."""
    if suffix in _TV_PARTS:
        return _TV_PARTS[suffix]
    for source, target in _TV_NORMS.items():
        if suffix.startswith(source):
            return target + suffix[len(source):]
    return None


def map_torchvision_resnet34(state_dict: dict[str, torch.Tensor], num_blocks: Sequence[int] = (3, 4, 4),
                             ) -> dict[str, torch.Tensor]:
    """Rename torchvision `resnet34` keys to `A2UResNetEncoder` keys, dropping those with no target.

    `conv1.weight` keeps its 3 input channels here; `load_encoder_weights` widens it.
    Raises KeyError naming any key of an unexpected form.
    """
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key == "conv1.weight":
            mapped["layer0.conv.weight"] = value
            continue
        if key.startswith("bn1."):
            mapped["layer0.bn." + key[len("bn1."):]] = value
            continue
        if key.startswith(("layer4.", "fc.")):
            continue
        match = _TV_BLOCK.match(key)
        suffix = _map_block_suffix(match.group(3)) if match else None
        if match is None or suffix is None:
            raise KeyError(f"unexpected key {key!r} in a torchvision-style resnet34 state_dict")
        stage, index = int(match.group(1)), int(match.group(2))
        if index >= num_blocks[stage - 1]:
            continue  # layer3 blocks 4-5 of ResNet-34 have no target (structure [3, 4, 4])
        if stage == 1:
            prefix = f"layer1.{index}."
        elif index == 0:
            prefix = f"layer{stage}_1."
        else:
            prefix = f"layer{stage}_2.{index - 1}."
        mapped[prefix + suffix] = value
    return mapped


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file holding a state_dict (optionally under 'state_dict'), minus an 'encoder.' prefix."""
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights file {str(path)!r} does not exist (nothing is downloaded)")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(f"encoder_weights file {str(path)!r} does not hold a state_dict of tensors")
    return {k[len("encoder."):] if k.startswith("encoder.") else k: v for k, v in loaded.items()}


def load_encoder_weights(encoder: A2UResNetEncoder, path: str | Path) -> None:
    """Load pretrained ResNet-34 weights from a local file into `encoder` (in place).

    Accepts the encoder's own state_dict (strict) or torchvision `resnet34` keys (detected by `conv1.weight`).
    The 7×7 stem filters are copied into the first 3 input channels; the others (trimap) are set to zero.
    Raises FileNotFoundError for a missing file and KeyError/ValueError naming the file for a mismatch.
    """
    path = Path(path)
    state_dict = _read_state_dict(path)
    if "conv1.weight" in state_dict:
        state_dict = map_torchvision_resnet34(state_dict, encoder.num_blocks)
    stem_key = "layer0.conv.weight"
    own = encoder.state_dict()
    if stem_key in state_dict and state_dict[stem_key].shape != own[stem_key].shape:
        stem = state_dict[stem_key]
        if stem.shape[0] != own[stem_key].shape[0] or stem.shape[2:] != own[stem_key].shape[2:] \
                or stem.shape[1] > own[stem_key].shape[1]:
            raise ValueError(f"{path}: stem weight shape {tuple(stem.shape)} does not fit "
                             f"{tuple(own[stem_key].shape)}")
        widened = torch.zeros_like(own[stem_key])
        widened[:, :stem.shape[1]] = stem
        state_dict[stem_key] = widened
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise KeyError(f"{path}: encoder weights do not match; missing {missing[:5]} ({len(missing)}), "
                       f"unexpected {unexpected[:5]} ({len(unexpected)})")
    encoder.load_state_dict(state_dict, strict=True)
