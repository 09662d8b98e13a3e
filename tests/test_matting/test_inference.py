"""Full-resolution inference: reflect padding to the stride, crop, clip/truncate, paste; tiled vs whole."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.matting.inputs import IMAGENET_MEAN, IMAGENET_STD
from pipeline.matting.inference import finalize_alpha, predict_alpha, predict_raw_alpha
from pipeline.matting.memory import PeakMemory
from pipeline.matting.tiling import tile_starts, tiled_forward
from pipeline.matting.metrics import compute_matting_metrics


def _sample(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    trimap = np.full((height, width), 128, np.uint8)
    trimap[: height // 4] = 0
    trimap[-height // 4:] = 255
    return image, trimap


class RecordingRedChannel(nn.Module):
    """Returns the un-normalised red channel (= R/255 of the padded input) and remembers the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.clone()
        return x[:, :1] * IMAGENET_STD[0] + IMAGENET_MEAN[0]


def test_reflect_pad_to_stride_and_crop_back():
    image, trimap = _sample(37, 50)
    model = RecordingRedChannel()
    raw = predict_raw_alpha(model, image, trimap, stride=16)
    assert model.seen.shape == (1, 4, 48, 64)
    red = model.seen[0, 0].numpy() * IMAGENET_STD[0] + IMAGENET_MEAN[0]
    # Reflect without repeating the edge: padded row r ≥ H shows row 2H − 2 − r (same for columns).
    rows = [r if r < 37 else 2 * 37 - 2 - r for r in range(48)]
    cols = [c if c < 50 else 2 * 50 - 2 - c for c in range(64)]
    assert np.allclose(red, image[np.ix_(rows, cols)][..., 0] / 255.0, atol=1e-6)
    assert np.allclose(model.seen[0, 3].numpy(), trimap[np.ix_(rows, cols)] / 255.0, atol=1e-6)
    assert raw.shape == (37, 50)
    assert np.allclose(raw, image[..., 0] / 255.0, atol=1e-6)


def test_no_padding_when_already_a_multiple():
    image, trimap = _sample(32, 16)
    model = RecordingRedChannel()
    predict_raw_alpha(model, image, trimap, stride=16)
    assert model.seen.shape == (1, 4, 32, 16)


def test_clip_truncate_and_paste_known_regions():
    raw = np.array([[-0.5, 0.25, 0.999], [1.7, 0.5, 0.0]], np.float32)
    trimap = np.array([[128, 128, 128], [0, 255, 128]], np.uint8)
    assert finalize_alpha(raw, trimap).tolist() == [[0, 63, 254], [0, 255, 0]]


def test_non_finite_output_is_an_error():
    with pytest.raises(ValueError, match="non-finite"):
        finalize_alpha(np.full((2, 2), np.nan, np.float32), np.full((2, 2), 128, np.uint8))


def test_predict_alpha_pastes_trimap():
    image, trimap = _sample(20, 24)
    quarter = lambda x: torch.full_like(x[:, :1], 0.25)  # noqa: E731
    pred = predict_alpha(quarter, image, trimap)
    assert pred.dtype == np.uint8 and pred.shape == (20, 24)
    assert (pred[trimap == 0] == 0).all() and (pred[trimap == 255] == 255).all()
    assert (pred[trimap == 128] == 63).all()


def test_wrong_model_output_shape_is_rejected():
    image, trimap = _sample(16, 16)
    with pytest.raises(ValueError, match="model returned shape"):
        predict_alpha(lambda x: x[:, :1, :8], image, trimap)


def test_bad_inputs_are_rejected():
    image, trimap = _sample(16, 16)
    with pytest.raises(ValueError, match="trimap must be H×W uint8"):
        predict_alpha(lambda x: x[:, :1], image, trimap[:8])
    with pytest.raises(ValueError, match="image must be H×W×3 uint8"):
        predict_alpha(lambda x: x[:, :1], image[..., 0], trimap)


def test_tile_starts_cover_and_align():
    assert tile_starts(64, 32, 16) == [0, 16, 32]
    assert tile_starts(80, 32, 16) == [0, 16, 32, 48]
    assert tile_starts(16, 32, 16) == [0]
    for start in tile_starts(208, 64, 16):
        assert start % 16 == 0


def _block_mean_model(x: torch.Tensor) -> torch.Tensor:
    """Stride-16 stand-in: one value per 16×16 block (mean of the red channel), upsampled by nearest."""
    pooled = torch.sigmoid(nn.functional.avg_pool2d(x[:, :1], 16))
    return nn.functional.interpolate(pooled, scale_factor=16, mode="nearest")


def test_tiled_equals_whole_for_pointwise_and_stride_aligned_models():
    image, trimap = _sample(75, 101, seed=3)
    torch.manual_seed(0)
    pointwise = nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU(), nn.Conv2d(8, 1, 1), nn.Sigmoid()).eval()
    for model in (pointwise, _block_mean_model):
        whole = predict_raw_alpha(model, image, trimap)
        tiled = predict_raw_alpha(model, image, trimap, tile=32, overlap=16)
        assert np.abs(whole - tiled).max() < 1e-5


def test_tiled_close_to_whole_for_a_conv_model():
    """A 3-layer 3×3 conv net sees the tile border; the ramp blending keeps metrics within 2% of whole-image."""
    image, trimap = _sample(96, 128, seed=4)
    torch.manual_seed(0)
    convnet = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                            nn.Conv2d(8, 1, 3, padding=1), nn.Sigmoid()).eval()
    gt = np.clip(image[..., 1].astype(int) + 20, 0, 255).astype(np.uint8)
    whole = compute_matting_metrics(predict_alpha(convnet, image, trimap), gt, trimap)
    tiled = compute_matting_metrics(predict_alpha(convnet, image, trimap, tile=48, overlap=16), gt, trimap)
    for metric in ("sad", "mse"):
        assert tiled[metric] == pytest.approx(whole[metric], rel=0.02)
    raw_whole = predict_raw_alpha(convnet, image, trimap)
    raw_tiled = predict_raw_alpha(convnet, image, trimap, tile=48, overlap=16)
    assert 0 < np.abs(raw_whole - raw_tiled).max() < 0.2


def test_tiled_forward_validates_sizes():
    x = torch.zeros(1, 4, 32, 32)
    with pytest.raises(ValueError, match="tile must be a positive multiple"):
        tiled_forward(lambda t: t[:, :1], x, tile=20, stride=16)
    with pytest.raises(ValueError, match="overlap must be"):
        tiled_forward(lambda t: t[:, :1], x, tile=32, stride=16, overlap=32)
    with pytest.raises(ValueError, match="padded to a multiple"):
        tiled_forward(lambda t: t[:, :1], torch.zeros(1, 4, 30, 32), tile=32, stride=16)


def test_peak_memory_sees_a_large_numpy_allocation():
    with PeakMemory("cpu") as memory:
        block = np.ones(40 * 1024 * 1024 // 8)  # 40 MiB, touched
        del block
    assert memory.method in ("rss_hwm_delta", "ru_maxrss_delta")
    if memory.method == "rss_hwm_delta":
        assert 30 < memory.peak_mb < 200
