"""The toy reconstruction network (`RecoverNet`-like) of the project's toy protocol ("ours").

Plain autoencoding of a 1×32×32 image through three ×2 downsamplings and three ×2 upsamplings with no skip
connections, so all fine spatial layout the decoder recovers travels through the down/up operator pair under
test (see shared/design/toy_protocol.md). Every block is conv 3×3 + BatchNorm + ReLU:

    layer1 1→32 | down1 | layer2 →64 | down2 | layer3 →128 | down3 | mid →256 →128
    | up1 | uplayer1 →64 | up2 | uplayer2 →32 | up3 | out →1 (plain conv)

The pair built for C channels serves downC and the matching up step, so pixel shuffle's ×4 / ÷4 channel
changes are absorbed by the following conv's input channels.

Deliberate choice: the N(0, 0.02) conv / N(1, 0.02) BatchNorm initialisation of the protocol is applied to the
network's own blocks; the operator pairs keep the initialisation their authors gave them.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from models.ops.pairs import build_pair
from models.registry import MODELS


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (stride 1, padding 1) + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


@MODELS.register_module()
class ToyReconstructionNet(BaseModel):
    """Autoencoder for 1×H×W images (H, W divisible by 8) with one operator pair per scale.

    Args:
        operator (str): operator-pair name from `models.ops.pairs.PAIR_NAMES`.
        channels (tuple[int, int, int]): encoder widths at full, 1/2 and 1/4 resolution. Default: (32, 64, 128).
        mid_channels (int): width of the bottleneck's first conv. Default: 256.
        in_channels (int): image channels. Default: 1.
        init_std (float): std of the normal initialisation of convs and BatchNorm weights. Default: 0.02.
        data_preprocessor (dict | None): MMEngine data preprocessor config. Default: None (cast only).
    """

    def __init__(self, operator: str, channels: tuple[int, int, int] = (32, 64, 128), mid_channels: int = 256,
                 in_channels: int = 1, init_std: float = 0.02, data_preprocessor: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        if len(channels) != 3:
            raise ValueError(f"channels must list 3 widths, got {channels}")
        self.operator, self.init_std = operator, init_std
        c1, c2, c3 = channels
        self.pairs = nn.ModuleList([build_pair(operator, channels=c) for c in channels])
        f = [p.down_channel_factor for p in self.pairs]
        d = [p.up_channel_divisor for p in self.pairs]
        self.layer1 = conv_bn_relu(in_channels, c1)
        self.layer2 = conv_bn_relu(c1 * f[0], c2)
        self.layer3 = conv_bn_relu(c2 * f[1], c3)
        self.mid = nn.Sequential(conv_bn_relu(c3 * f[2], mid_channels), conv_bn_relu(mid_channels, c3))
        self.uplayer1 = conv_bn_relu(c3 // d[2], c2)
        self.uplayer2 = conv_bn_relu(c2 // d[1], c1)
        self.out = nn.Conv2d(c1 // d[0], in_channels, 3, padding=1)
        self.init_weights()

    def init_weights(self) -> None:
        """Conv weights N(0, std), biases 0; BatchNorm weights N(1, std), biases 0 (the pairs are left alone)."""
        pair_modules = {id(m) for m in self.pairs.modules()}
        for module in self.modules():
            if id(module) in pair_modules:
                continue
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, self.init_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, self.init_std)
                nn.init.zeros_(module.bias)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """N×C×H×W -> N×C×H×W reconstruction (unclipped)."""
        if images.ndim != 4 or images.shape[-1] % 8 or images.shape[-2] % 8:
            raise ValueError(f"images must be N×C×H×W with H, W divisible by 8, got {tuple(images.shape)}")
        pair1, pair2, pair3 = self.pairs
        x, state1 = pair1.down(self.layer1(images))
        x, state2 = pair2.down(self.layer2(x))
        x, state3 = pair3.down(self.layer3(x))
        x = self.uplayer1(pair3.up(self.mid(x), state3))
        x = self.uplayer2(pair2.up(x, state2))
        return self.out(pair1.up(x, state1))

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor") -> Any:
        """MMEngine entry: 'loss' -> {'loss': L1}, 'predict' -> one dict per image, 'tensor' -> N×C×H×W."""
        output = self.reconstruct(inputs)
        if mode == "loss":
            return {"loss": F.l1_loss(output, inputs)}
        if mode == "predict":
            indices = _sample_indices(data_samples, len(inputs))
            return [{"pred": o.detach(), "target": t.detach(), "index": i}
                    for o, t, i in zip(output, inputs, indices)]
        if mode == "tensor":
            return output
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")


def _sample_indices(data_samples: Any, batch: int) -> list[int]:
    """Dataset indices from the collated `data_samples` ({'index': tensor}), or -1 when absent."""
    if isinstance(data_samples, dict) and "index" in data_samples:
        return [int(i) for i in data_samples["index"]]
    return [-1] * batch
