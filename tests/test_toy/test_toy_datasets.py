"""Dataset resolution order and errors, split arithmetic, and the 28→32 resize against a numpy reference."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from pipeline.toy.datasets import (DatasetNotFoundError, ToyReconstructionDataset, resize_to_32,
                                        resolve_idx_dir, split_range, validation_pool_size)
from tests.test_toy.conftest import rectangles


def test_error_lists_every_place_tried_and_the_fix(tmp_path):
    (tmp_path / "debian" / "mnist").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_idx_dir("mnist", {"mnist": None}, cache_dir=tmp_path / "cache", allow_download=False,
                        debian_root=tmp_path / "debian")
    text = str(info.value)
    assert "toy.data_dirs.mnist: not set" in text
    assert f"{tmp_path / 'debian' / 'mnist'}: incomplete" in text
    assert f"{tmp_path / 'cache' / 'mnist'}: absent" in text
    assert "download: disabled" in text
    assert "Fix: mkdir -p data/toy_cache/mnist" in text


def test_failed_download_is_listed(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DatasetNotFoundError, match="download from .*network unreachable"):
        resolve_idx_dir("fashion-mnist", None, cache_dir=tmp_path, debian_root=tmp_path / "none")


def test_params_path_wins_and_is_authoritative(tmp_path, fake_mnist):
    files = resolve_idx_dir("mnist", {"mnist": str(fake_mnist)}, allow_download=False,
                            debian_root=tmp_path)
    assert files["train_images"] == fake_mnist / "train-images-idx3-ubyte.gz"
    assert files["test_labels"] == fake_mnist / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(DatasetNotFoundError, match="toy.data_dirs.mnist = .*empty"):
        (tmp_path / "empty").mkdir()
        resolve_idx_dir("mnist", {"mnist": str(tmp_path / "empty")}, allow_download=False)


def test_debian_location_is_used(tmp_path, fake_mnist):
    shutil.copytree(fake_mnist, tmp_path / "fashion-mnist")
    files = resolve_idx_dir("fashion-mnist", None, allow_download=False, debian_root=tmp_path,
                            cache_dir=tmp_path / "cache")
    assert files["train_images"].parent == tmp_path / "fashion-mnist"


def test_unknown_dataset():
    with pytest.raises(ValueError, match="'cifar' is not known"):
        resolve_idx_dir("cifar")


def test_split_arithmetic():
    assert validation_pool_size(60000) == 5000 and validation_pool_size(10000) == 1000
    assert split_range("train", 60000, 10000, None) == (0, 55000)
    assert split_range("val", 60000, 10000, 500) == (55000, 55500)
    assert split_range("test", 60000, 10000, 1000) == (0, 1000)
    assert split_range("train", 60000, 10000, 70000) == (0, 55000)
    with pytest.raises(ValueError, match="split must be one of"):
        split_range("dev", 10, 10, None)


def test_dataset_samples(fake_mnist):
    files = resolve_idx_dir("mnist", {"mnist": str(fake_mnist)}, allow_download=False)
    val = ToyReconstructionDataset(files, "val", count=10)
    assert len(val) == 10 and val[0]["data_samples"]["index"] == 660 - 66
    sample = val[3]["inputs"]
    assert sample.shape == (1, 32, 32) and sample.dtype == torch.float32
    assert 0.0 <= float(sample.min()) and float(sample.max()) <= 1.0
    expected = resize_to_32(rectangles(660, 0)[594 + 3: 594 + 4])[0]
    torch.testing.assert_close(sample, expected)


def _bilinear_reference(image: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize with edge clamping, written out in numpy."""
    scale = image.shape[0] / size
    coords = np.clip((np.arange(size) + 0.5) * scale - 0.5, 0, None)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, image.shape[0] - 1)
    frac = coords - low
    rows = image[low] * (1 - frac)[:, None] + image[high] * frac[:, None]
    return rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]


def test_resize_matches_numpy_bilinear_reference():
    image = np.random.default_rng(1).integers(0, 256, size=(1, 28, 28)).astype(np.uint8)
    got = resize_to_32(image)[0, 0].numpy()
    np.testing.assert_allclose(got, _bilinear_reference(image[0] / 255.0, 32), atol=1e-6)


def test_real_fashion_mnist_when_installed():
    try:
        files = resolve_idx_dir("fashion-mnist", None, allow_download=False, cache_dir="/nonexistent")
    except DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST not installed here: {exc}")
    test = ToyReconstructionDataset(files, "test", count=16)
    assert len(test) == 16 and test.images.shape == (16, 1, 32, 32)
    assert len(ToyReconstructionDataset(files, "val")) == 5000
