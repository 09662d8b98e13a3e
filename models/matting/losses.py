"""Matting loss of the official A2U code (spec 5.2): masked Charbonnier on alpha and on the composite.

With m the unknown mask (trimap == 128), α̂ the raw network output and Ĉ = α̂F + (1−α̂)B:

    L_α    = mean_b  Σ_p        √((m(α̂ − α))² + ε²) / (Σ_p m + 1)
    L_comp = mean_b  Σ_{RGB,p}  √((m(Ĉ − I))² + ε²) / (Σ_p m + 1)      (summed over the 3 channels)
    L      = 0.5·L_α + 0.5·L_comp

Both terms are normalised per image by the unknown-pixel count (+1), then averaged over the batch; outside the
mask every pixel still contributes ε, as in the official `weighted_loss`.
"""
from __future__ import annotations

import torch
from torch import nn

from models.registry import MODELS


def _check_shapes(**named: torch.Tensor) -> None:
    """Raise ValueError unless every tensor is N×C×H×W with the same N, H, W (C may differ)."""
    ref_name, ref = next(iter(named.items()))
    for name, tensor in named.items():
        if tensor.ndim != 4:
            raise ValueError(f"{name} must be N×C×H×W, got shape {tuple(tensor.shape)}")
        if tensor.shape[0] != ref.shape[0] or tensor.shape[-2:] != ref.shape[-2:]:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, which does not match "
                             f"{ref_name} {tuple(ref.shape)} in N, H or W")


def masked_charbonnier(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                       eps: float = 1e-6) -> torch.Tensor:
    """Per-image Charbonnier error on the masked region, normalised by (mask pixel count + 1), batch-averaged.

    Args:
        pred (Tensor): N×C×H×W prediction.
        target (Tensor): N×C×H×W target.
        mask (Tensor): N×1×H×W weights (1 in the unknown region, 0 elsewhere).
        eps (float): Charbonnier ε. Default: 1e-6.

    Returns:
        Tensor: scalar; channels are summed, not averaged (spec 5.2).
    """
    _check_shapes(pred=pred, target=target, mask=mask)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    if mask.shape[1] != 1:
        raise ValueError(f"mask must have one channel, got shape {tuple(mask.shape)}")
    per_pixel = torch.sqrt((mask * (pred - target)) ** 2 + eps ** 2)
    per_image = per_pixel.sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)) + 1.0)
    return per_image.mean()


@MODELS.register_module()
class A2UMattingLoss(nn.Module):
    """0.5 × Charbonnier alpha loss + 0.5 × Charbonnier composition loss on the unknown region (spec 5.2).

    Args:
        alpha_weight (float): weight of L_α. Default: 0.5.
        comp_weight (float): weight of L_comp. Default: 0.5.
        eps (float): Charbonnier ε. Default: 1e-6.
    """

    def __init__(self, alpha_weight: float = 0.5, comp_weight: float = 0.5, eps: float = 1e-6) -> None:
        super().__init__()
        if alpha_weight < 0 or comp_weight < 0:
            raise ValueError(f"loss weights must be >= 0, got alpha_weight={alpha_weight}, comp_weight={comp_weight}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.alpha_weight, self.comp_weight, self.eps = alpha_weight, comp_weight, eps

    def forward(self, pred_alpha: torch.Tensor, alpha: torch.Tensor, unknown: torch.Tensor,
                fg: torch.Tensor, bg: torch.Tensor, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the weighted terms as `{'loss_alpha', 'loss_comp'}` (MMEngine sums keys containing 'loss').

        Args:
            pred_alpha (Tensor): N×1×H×W raw network output (not clipped, as in the official code).
            alpha (Tensor): N×1×H×W ground-truth alpha in [0, 1].
            unknown (Tensor): N×1×H×W unknown mask (1 where trimap == 128).
            fg, bg, image (Tensor): N×3×H×W foreground, background and composite in [0, 1].
        """
        _check_shapes(pred_alpha=pred_alpha, alpha=alpha, unknown=unknown, fg=fg, bg=bg, image=image)
        composite = pred_alpha * fg + (1.0 - pred_alpha) * bg
        loss_alpha = masked_charbonnier(pred_alpha, alpha, unknown, self.eps)
        loss_comp = masked_charbonnier(composite, image, unknown, self.eps)
        return {"loss_alpha": self.alpha_weight * loss_alpha, "loss_comp": self.comp_weight * loss_comp}
