"""`A2UMattor`: the MMEngine model that wraps a matting network with the spec-5.2 loss.

The wrapped network (built from `MODELS`, e.g. `dict(type='A2UMattingNet', upsampler='a2u')`) maps the N×4×H×W
input of `models.matting.inputs.build_network_input` to a raw N×1×H×W alpha. This class adds:

* `forward(inputs, data_samples, mode='loss')` -> `{'loss_alpha', 'loss_comp'}` for MMEngine's train loop;
* `forward(inputs, mode='predict' | 'tensor')` -> raw alpha N×1×H×W. The input is reflect-padded to a multiple of
  `pad_stride` (16, spec 5.4) when needed and the output cropped back, so `model(x)` works at any size.

Training targets travel as a dict of stacked tensors in `data_samples` (see `pipeline.matting.transforms`): `alpha`,
`unknown` (N×1×H×W), `fg`, `bg`, `image` (N×3×H×W), all in [0, 1].
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from models.registry import MODELS

TARGET_KEYS = ("alpha", "unknown", "fg", "bg", "image")


def pad_to_multiple(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom/right of N×C×H×W `x` to multiples of `stride`; return it and the original H, W."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % stride, (-width) % stride
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)


@MODELS.register_module()
class A2UMattor(BaseModel):
    """Matting model for MMEngine's Runner.

    Args:
        network (dict): config of the network (`type` registered in `MODELS`), input N×4×H×W, output N×1×H×W.
        loss (dict, optional): loss config. Default: `dict(type='A2UMattingLoss')` (0.5 α + 0.5 composition).
        pad_stride (int): predictions pad inputs to a multiple of this (the output stride). Default: 16.
        data_preprocessor (dict, optional): MMEngine data preprocessor; the default only moves data to device.
        init_cfg (dict, optional): MMEngine weight initialisation config.
    """

    def __init__(self, network: dict, loss: dict | None = None, pad_stride: int = 16,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not isinstance(network, dict) or "type" not in network:
            raise TypeError(f"network must be a config dict with a 'type' key, got {network!r}")
        if pad_stride < 1:
            raise ValueError(f"pad_stride must be >= 1, got {pad_stride}")
        self.network = MODELS.build(network)
        self.loss = MODELS.build(loss if loss is not None else dict(type="A2UMattingLoss"))
        self.pad_stride = pad_stride

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor") -> Any:
        """Dispatch on `mode` ('loss', 'predict' or 'tensor'); see the module docstring for the outputs."""
        if inputs.ndim != 4 or inputs.shape[1] != 4:
            raise ValueError(f"inputs must be N×4×H×W (normalised RGB + trimap), got {tuple(inputs.shape)}")
        if mode == "loss":
            return self.loss_from_targets(self.network(inputs), data_samples)
        if mode in ("predict", "tensor"):
            return self.predict_alpha(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def predict_alpha(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw alpha N×1×H×W at the input size (padded to `pad_stride` for the network, then cropped)."""
        padded, (height, width) = pad_to_multiple(inputs, self.pad_stride)
        return self.network(padded)[..., :height, :width]

    def loss_from_targets(self, pred_alpha: torch.Tensor, targets: Any) -> dict[str, torch.Tensor]:
        """Spec-5.2 loss terms from the raw prediction and the dict of target tensors."""
        if not isinstance(targets, dict):
            raise TypeError(f"mode='loss' needs data_samples as a dict of target tensors {TARGET_KEYS}, "
                            f"got {type(targets).__name__}")
        missing = [key for key in TARGET_KEYS if key not in targets]
        if missing:
            raise KeyError(f"data_samples lacks target keys {missing}; expected {TARGET_KEYS}")
        return self.loss(pred_alpha, **{key: targets[key].float() for key in TARGET_KEYS})
