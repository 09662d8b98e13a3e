"""Reconstruction metrics against hand computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.toy.metrics import ReconstructionMetric, image_metrics


def test_psnr_mae_mse_by_hand():
    target = np.zeros((1, 32, 32))
    pred = np.full((1, 32, 32), 0.1)
    got = image_metrics(pred, target)
    assert got["mse"] == pytest.approx(0.01)
    assert got["mae"] == pytest.approx(0.1)
    assert got["psnr"] == pytest.approx(20.0)


def test_prediction_is_clipped_not_the_target():
    target = np.full((32, 32), 0.5)
    pred = np.full((32, 32), 3.0)          # clipped to 1 -> error 0.5
    got = image_metrics(pred, target)
    assert got["mae"] == pytest.approx(0.5) and got["mse"] == pytest.approx(0.25)
    assert got["psnr"] == pytest.approx(10 * math.log10(1 / 0.25))


def test_ssim_identity_and_data_range():
    rng = np.random.default_rng(0)
    image = rng.random((32, 32))
    assert image_metrics(image, image)["ssim"] == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(0, 0.1, image.shape), 0, 1)
    assert 0.0 < image_metrics(noisy, image)["ssim"] < 0.99


def test_shape_errors():
    with pytest.raises(ValueError, match="pred shape"):
        image_metrics(np.zeros((32, 32)), np.zeros((16, 16)))
    with pytest.raises(ValueError, match="single-channel"):
        image_metrics(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)))


def test_metric_averages_per_image():
    metric = ReconstructionMetric()
    target = torch.zeros(1, 32, 32)
    metric.process({}, [{"pred": target + 0.1, "target": target}, {"pred": target + 0.01, "target": target}])
    out = metric.compute_metrics(metric.results)
    assert out["count"] == 2
    assert out["psnr"] == pytest.approx((20.0 + 40.0) / 2)      # mean of per-image PSNRs, not PSNR of the mean
    assert out["mse"] == pytest.approx((0.01 + 0.0001) / 2)
    with pytest.raises(ValueError, match="no images"):
        metric.compute_metrics([])
