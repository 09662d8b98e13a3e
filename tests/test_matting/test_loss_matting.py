"""The spec-5.2 loss on hand-made tensors (values worked out by hand) and the mattor's modes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import models.matting.losses  # noqa: F401  (registers A2UMattingLoss)
from models.matting.losses import A2UMattingLoss, masked_charbonnier
from models.matting.mattor import A2UMattor
from models.registry import MODELS

EPS = 1e-6


def _maps(*rows: list[float]) -> torch.Tensor:
    """N×1×2×2 tensor from N lists of 4 values."""
    return torch.tensor(rows, dtype=torch.float64).view(len(rows), 1, 2, 2)


def test_masked_charbonnier_by_hand() -> None:
    pred = _maps([0.5, 0.25, 0.9, 0.3], [0.2, 0.2, 0.2, 0.2])
    target = _maps([0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])
    mask = _maps([1, 1, 0, 0], [0, 0, 0, 0])
    # image 1: sqrt(0.5² + ε²) + sqrt(0.25² + ε²) + 2ε over (2 + 1); image 2: 4ε over (0 + 1); then the mean
    image1 = (math.sqrt(0.25 + EPS**2) + math.sqrt(0.0625 + EPS**2) + 2 * EPS) / 3
    image2 = 4 * EPS / 1
    value = masked_charbonnier(pred, target, mask, EPS)
    assert value.item() == pytest.approx((image1 + image2) / 2, rel=1e-12)
    assert value.item() == pytest.approx(0.125, abs=1e-5)


def test_loss_terms_weights_and_channel_sum() -> None:
    pred_alpha = _maps([1.0, 0.0, 0.5, 0.5])
    alpha = _maps([0.5, 0.0, 0.5, 1.0])
    unknown = _maps([1, 1, 1, 0])
    fg = torch.ones(1, 3, 2, 2, dtype=torch.float64)
    bg = torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    image = torch.full((1, 3, 2, 2), 0.25, dtype=torch.float64)
    losses = A2UMattingLoss(eps=EPS)(pred_alpha, alpha, unknown, fg, bg, image)
    # alpha: |1-0.5| + 0 + 0 over the 3 unknown pixels (+1), 1 masked-out pixel contributes ε, ×0.5
    assert losses["loss_alpha"].item() == pytest.approx(0.5 * (0.5 + 2 * EPS + EPS) / 4, abs=1e-9)
    # composite = pred_alpha (fg 1, bg 0): errors 0.75, 0.25, 0.25 per channel, summed over 3 channels, ×0.5
    comp_per_channel = 0.75 + 0.25 + 0.25 + EPS
    assert losses["loss_comp"].item() == pytest.approx(0.5 * 3 * comp_per_channel / 4, abs=1e-9)


def test_no_gradient_outside_the_unknown_region() -> None:
    pred = _maps([0.3, 0.7, 0.1, 0.9]).requires_grad_(True)
    masked_charbonnier(pred, _maps([0, 0, 0, 0]), _maps([1, 0, 1, 0])).backward()
    grad = pred.grad.view(-1)
    assert grad[1] == 0 and grad[3] == 0 and grad[0] > 0 and grad[2] > 0


def test_shape_errors_name_the_tensor() -> None:
    with pytest.raises(ValueError, match="mask"):
        masked_charbonnier(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 2))
    with pytest.raises(ValueError, match="eps"):
        A2UMattingLoss(eps=0)


class _Doubler(nn.Module):
    """Stand-in network: alpha = 2 × trimap channel (checks padding and crop in the mattor)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 16 or x.shape[-1] % 16:
            raise ValueError("network needs multiples of 16")
        return self.scale * x[:, 3:4]


MODELS.register_module(name="_TestDoublerNet", module=_Doubler, force=True)


def test_mattor_modes() -> None:
    mattor = A2UMattor(network=dict(type="_TestDoublerNet"))
    x = torch.rand(2, 4, 20, 37)
    out = mattor(x)  # mode defaults to 'tensor'; padded to 32×48 internally, cropped back
    assert out.shape == (2, 1, 20, 37) and torch.allclose(out, 2 * x[:, 3:4])
    assert torch.equal(mattor(x, mode="predict"), out)
    targets = {"alpha": x[:, 3:4], "unknown": torch.ones(2, 1, 20, 37), "fg": torch.ones(2, 3, 20, 37),
               "bg": torch.zeros(2, 3, 20, 37), "image": x[:, :3].clamp(0, 1)}
    xs = torch.rand(2, 4, 16, 32)
    targets = {k: v[..., :16, :32] for k, v in targets.items()}
    losses = mattor(xs, targets, mode="loss")
    assert set(losses) == {"loss_alpha", "loss_comp"} and all(v.item() > 0 for v in losses.values())
    with pytest.raises(KeyError, match="unknown"):
        mattor(xs, {"alpha": targets["alpha"]}, mode="loss")
    with pytest.raises(ValueError, match="mode"):
        mattor(xs, mode="bogus")
