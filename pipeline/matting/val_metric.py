"""`MattingValMetric`: SAD and MSE (validation) or SAD/MSE/Grad/Conn (`tools/test.py`), MATLAB semantics.

Each raw prediction is clipped to [0, 1], scaled to 0–255 and truncated to uint8 (as the evaluate stage saves
it); known regions are replaced by the trimap (spec 5.4); then `pipeline.matting.metrics` scores the unknown
region only (SAD, Grad, Conn /1000, MSE unscaled), the same functions the evaluate stage calls. Values are
averaged over all images (all ranks). The configs use it as `val_evaluator` (SAD, MSE: cheap, every
validation) and as `test_evaluator` with `metric_names=('sad', 'mse', 'grad', 'conn')` (not `metrics`: MMEngine
reads a `metrics` key as an `Evaluator` config).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from pipeline.matting.inference import finalize_alpha
from pipeline.matting.metrics import METRIC_NAMES, compute_matting_metrics, mse, sad


def prediction_to_uint8(pred: torch.Tensor, trimap: np.ndarray) -> np.ndarray:
    """1×H×W (or H×W) raw alpha -> H×W uint8 with trimap-known pixels set to 0/255.

    Same rule as the evaluate stage (`finalize_alpha`: clip, ×255, truncate, paste), so validation and test
    numbers are computed alike.
    """
    return finalize_alpha(pred.detach().float().cpu().reshape(pred.shape[-2:]).numpy(), trimap)


@METRICS.register_module()
class MattingValMetric(BaseMetric):
    """Mean errors over the images (keys `<prefix>/<metric>`, e.g. `val/sad`, `test/conn`).

    Args:
        prefix (str): metric key prefix. Default: 'val'.
        collect_device (str): where results are gathered across ranks. Default: 'cpu'.
        metric_names (sequence of str): which of 'sad', 'mse', 'grad', 'conn'. Default: ('sad', 'mse').
    """

    default_prefix = "val"

    def __init__(self, prefix: str | None = "val", collect_device: str = "cpu",
                 metric_names: Sequence[str] = ("sad", "mse")) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        unknown = [m for m in metric_names if m not in METRIC_NAMES]
        if unknown or not metric_names:
            raise ValueError(f"MattingValMetric: metric_names must be a non-empty subset of {METRIC_NAMES}, got "
                             f"{list(metric_names)}")
        self.metrics = tuple(metric_names)

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
            if self.metrics == ("sad", "mse"):
                self.results.append({"sad": sad(pred_u8, alpha, trimap), "mse": mse(pred_u8, alpha, trimap)})
            else:
                scores = compute_matting_metrics(pred_u8, alpha, trimap)
                self.results.append({m: scores[m] for m in self.metrics})

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise ValueError("MattingValMetric: no validation results to average (empty validation split?)")
        return {key: float(np.mean([r[key] for r in results])) for key in self.metrics}
