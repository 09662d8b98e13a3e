"""IndexNet index blocks, index-weighted pooling and index-guided upsampling, pure PyTorch.

Paper: Lu, Dai, Shen, Xu, "Indices Matter: Learning to Index for Deep Image Matting", ICCV 2019
(https://arxiv.org/abs/1908.00672); official code poppinace/indexnet_matting (scripts/hlindex.py).

An index block predicts, from the encoder feature x (N×C×H×W), 4 logits per 2×2 cell; then
- encoder index = softmax over the cell of sigmoid(logits) (sums to 1 in each cell),
- decoder index = sigmoid(logits),
both pixel-shuffled back to H×W. Pooling is Σ_cell index_en·x (= 4·avg_pool(index_en·x)); upsampling is
index_de · nearest(z). Block types:
- 'holistic': one index map shared by all channels (conv C→4, or C→2C + BN + ReLU6 + 1×1 2C→4 if nonlinear);
- 'o2o' (depthwise one-to-one): each channel's index from that channel only (grouped convs);
- 'm2o' (depthwise many-to-one): each channel's index from all channels (full convs).
`use_context` widens the index conv from 2×2 (stride 2) to 4×4 (stride 2, padding 1). The four per-position
convs of the official depthwise blocks are fused here into one conv with 4× the outputs (same parameters).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from models.registry import MODELS

INDEX_BLOCK_TYPES = ("holistic", "o2o", "m2o")


class IndexBlock(nn.Module):
    """Predicts (encoder index, decoder index), each N×C'×H×W with C' = 1 (holistic) or C (depthwise).

    Args:
        channels (int): C.
        block_type (str): 'holistic', 'o2o' or 'm2o'. Default: 'm2o'.
        use_nonlinear (bool): two-layer index block (conv + BN + ReLU6 + 1×1 conv). Default: True.
        use_context (bool): 4×4 index conv instead of 2×2. Default: True.
    """

    def __init__(self, channels: int, block_type: str = "m2o", use_nonlinear: bool = True,
                 use_context: bool = True) -> None:
        super().__init__()
        if block_type not in INDEX_BLOCK_TYPES:
            raise ValueError(f"block_type must be one of {INDEX_BLOCK_TYPES}, got {block_type!r}")
        self.channels, self.block_type = channels, block_type
        self.use_nonlinear, self.use_context = use_nonlinear, use_context
        kernel, padding = (4, 1) if use_context else (2, 0)
        if block_type == "holistic":
            hidden, out, groups, point_groups = 2 * channels, 4, 1, 1
        elif block_type == "o2o":                      # output channel c·4 + position: input channel c only
            hidden, out, groups, point_groups = 4 * channels, 4 * channels, channels, 4 * channels
        else:                                          # output channel position·C + c: all input channels
            hidden, out, groups, point_groups = 4 * channels, 4 * channels, 1, 4
        # Convs are created uninitialised: init_weights() draws their initial values, in this order.
        if use_nonlinear:
            self.index = nn.Sequential(
                skip_init(nn.Conv2d, channels, hidden, kernel, stride=2, padding=padding, groups=groups, bias=False),
                nn.BatchNorm2d(hidden), nn.ReLU6(),
                skip_init(nn.Conv2d, hidden, out, 1, groups=point_groups, bias=False))
        else:
            self.index = skip_init(nn.Conv2d, channels, out, kernel, stride=2, padding=padding, groups=groups,
                                   bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """PyTorch's default initialisation (convs kaiming-uniform a=√5; BatchNorm γ=1, β=0)."""
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.BatchNorm2d)):
                layer.reset_parameters()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.channels or x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"IndexBlock: x must be N×{self.channels}×H×W with even H, W, got {tuple(x.shape)}")
        logits = self.index(x)
        n, _, h, w = logits.shape
        if self.block_type == "m2o":                   # (position, c) -> (c, position)
            logits = logits.view(n, 4, -1, h, w).transpose(1, 2)
        logits = logits.reshape(n, -1, 4, h, w)
        decoder = torch.sigmoid(logits.to(torch.promote_types(logits.dtype, torch.float32)))
        encoder = F.softmax(decoder, dim=2)
        return (F.pixel_shuffle(encoder.reshape(n, -1, h, w), 2), F.pixel_shuffle(decoder.reshape(n, -1, h, w), 2))


@MODELS.register_module(name="IndexNetDown")
class IndexNetDown(nn.Module):
    """Index-weighted ×2 pooling; `forward_with_state` also returns the decoder index for `IndexNetUp`.

    Args:
        in_channels (int): C.
        block_type (str): 'holistic', 'o2o' or 'm2o'. Default: 'm2o' (the toy protocol's choice).
        use_nonlinear (bool): two-layer index block. Default: True.
        use_context (bool): 4×4 index conv instead of 2×2. Default: True.
    """

    def __init__(self, in_channels: int, block_type: str = "m2o", use_nonlinear: bool = True,
                 use_context: bool = True) -> None:
        super().__init__()
        self.in_channels, self.block_type = in_channels, block_type
        self.use_nonlinear, self.use_context = use_nonlinear, use_context
        self.index_block = IndexBlock(in_channels, block_type, use_nonlinear, use_context)

    def init_weights(self) -> None:
        """Re-initialise the index block (it initialises itself when built)."""
        self.index_block.init_weights()

    def forward_with_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x N×C×H×W -> (N×C×H/2×W/2, decoder index N×C'×H×W)."""
        encoder_index, decoder_index = self.index_block(x)
        return 4 * F.avg_pool2d(encoder_index.to(x.dtype) * x, 2), decoder_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_state(x)[0]


@MODELS.register_module(name="IndexNetUp")
class IndexNetUp(nn.Module):
    """Index-guided ×2 upsampling: decoder index ⊙ nearest(x). Parameter-free."""

    def __init__(self, in_channels: int | None = None, scale_factor: int = 2) -> None:
        super().__init__()
        if scale_factor != 2:
            raise ValueError(f"scale_factor must be 2 for IndexNetUp, got {scale_factor}")
        self.in_channels, self.scale_factor = in_channels, scale_factor

    def forward(self, x: torch.Tensor, decoder_index: torch.Tensor) -> torch.Tensor:
        """x N×C×h×w, decoder_index N×(C or 1)×2h×2w -> N×C×2h×2w."""
        if decoder_index.shape[-2:] != (2 * x.shape[-2], 2 * x.shape[-1]) or decoder_index.shape[1] not in (
                1, x.shape[1]):
            raise ValueError(f"IndexNetUp: decoder_index {tuple(decoder_index.shape)} does not match x "
                             f"{tuple(x.shape)} (expected N×(C or 1)×2h×2w)")
        return decoder_index.to(x.dtype) * F.interpolate(x, scale_factor=2, mode="nearest")
