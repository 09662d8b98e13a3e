"""`MattingValMetric`: SAD and MSE on the held-out validation split during training (MATLAB semantics).

Each raw prediction is clipped to [0, 1], scaled to 0–255 and truncated to uint8 (as the evaluate stage saves
it); known regions are replaced by the trimap (spec 5.4); then `pipeline.matting.metrics.sad` / `mse` score the
unknown region only (SAD /1000, MSE unscaled). Values are averaged over all validation images (all ranks).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from pipeline.matting.inference import finalize_alpha
from pipeline.matting.metrics import mse, sad


def prediction_to_uint8(pred: torch.Tensor, trimap: np.ndarray) -> np.ndarray:
    """1×H×W (or H×W) raw alpha -> H×W uint8 with trimap-known pixels set to 0/255.

    Same rule as the evaluate stage (`finalize_alpha`: clip, ×255, truncate, paste), so validation and test
    numbers are computed alike.
    """
    return finalize_alpha(pred.detach().float().cpu().reshape(pred.shape[-2:]).numpy(), trimap)


@METRICS.register_module()
class MattingValMetric(BaseMetric):
    """Mean SAD and MSE over the validation images (keys `<prefix>/sad`, `<prefix>/mse`).

    Args:
        prefix (str): metric key prefix. Default: 'val'.
        collect_device (str): where results are gathered across ranks. Default: 'cpu'.
    """

    default_prefix = "val"

    def __init__(self, prefix: str | None = "val", collect_device: str = "cpu") -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: dict, data_samples: Sequence[Any]) -> None:
        """Score each prediction (1×H×W tensor) against `data_batch['data_samples']` alpha/trimap (N×1×H×W)."""
        targets = data_batch["data_samples"]
        for index, pred in enumerate(data_samples):
            alpha = targets["alpha"][index].reshape(targets["alpha"].shape[-2:]).cpu().numpy()
            trimap = targets["trimap"][index].reshape(targets["trimap"].shape[-2:]).cpu().numpy()
            if pred.shape[-2:] != alpha.shape:
                raise ValueError(f"prediction {tuple(pred.shape)} does not match alpha {alpha.shape} "
                                 f"for validation image {targets.get('name', ['?'] * (index + 1))[index]}")
            pred_u8 = prediction_to_uint8(pred, trimap)
            self.results.append({"sad": sad(pred_u8, alpha, trimap), "mse": mse(pred_u8, alpha, trimap)})

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise ValueError("MattingValMetric: no validation results to average (empty validation split?)")
        return {key: float(np.mean([r[key] for r in results])) for key in ("sad", "mse")}
