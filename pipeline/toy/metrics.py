"""Per-image reconstruction metrics (PSNR, SSIM, MAE, MSE) and their MMEngine `BaseMetric`.

Each prediction is clipped to [0, 1] and compared with its target per image, then the per-image values are
averaged over the split. PSNR and SSIM come from scikit-image with data_range 1; SSIM is computed per 2-D
image (scikit-image's default 7×7 Gaussian-free window). MSE is the mean squared error (not its root).
The third-party harness this protocol is modelled on computed PSNR/SSIM per batch, SSIM with data_range=32 over
a whole batch as one volume, and labelled RMSE as "mse"; none of that is copied here.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

METRIC_NAMES = ("psnr", "ssim", "mae", "mse")


def image_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Metrics of one image. `pred`, `target`: C×H×W or H×W floats; `pred` is clipped to [0, 1] first."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    if pred.ndim == 3:
        if pred.shape[0] != 1:
            raise ValueError(f"expected a single-channel image (1×H×W), got {pred.shape}")
        pred, target = pred[0], target[0]
    if pred.ndim != 2:
        raise ValueError(f"expected H×W or 1×H×W, got {pred.shape}")
    pred = np.clip(pred, 0.0, 1.0)
    diff = pred - target
    mse = float(np.mean(diff ** 2))
    with np.errstate(divide="ignore"):
        psnr = float(peak_signal_noise_ratio(target, pred, data_range=1.0))
    ssim = float(structural_similarity(target, pred, data_range=1.0))
    return {"psnr": psnr, "ssim": ssim, "mae": float(np.mean(np.abs(diff))), "mse": mse}


@METRICS.register_module()
class ReconstructionMetric(BaseMetric):
    """PSNR / SSIM / MAE / MSE averaged over images.

    `process` takes the model's 'predict' outputs: one dict per image with 'pred' and 'target' (1×H×W tensors).

    Metrics:
        psnr (dB, data_range 1), ssim (data_range 1), mae, mse: per-image values averaged; `count` images.

    Args:
        collect_device (str): where results are gathered in distributed runs. Default: 'cpu'.
        prefix (str): key prefix of the reported metrics. Default: 'recon'.
    """

    default_prefix = "recon"

    def __init__(self, collect_device: str = "cpu", prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Record one metrics dict per predicted image (inputs are not modified)."""
        for sample in data_samples:
            pred = sample["pred"].detach().cpu().numpy()
            target = sample["target"].detach().cpu().numpy()
            self.results.append(image_metrics(pred, target))

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Average each metric over the recorded images (infinite PSNRs of exact reconstructions are kept)."""
        if not results:
            raise ValueError("ReconstructionMetric: no images were processed")
        out = {name: float(np.mean([r[name] for r in results])) for name in METRIC_NAMES}
        out["count"] = len(results)
        return out
