"""Fixtures of the toy-track tests: small MNIST-like IDX files made on the fly (so the core tests never skip)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.toy.idx import write_idx

#: A network small enough for Runner tests to take seconds (the pipeline path is the same as the real one).
TINY_NET = {"model.channels": (8, 16, 32), "model.mid_channels": 16}


def rectangles(count: int, seed: int) -> np.ndarray:
    """`count` 28×28 uint8 images, each one bright axis-aligned rectangle on black (MNIST-like statistics)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(2, 14, size=2)
        height, width = rng.integers(6, 13, size=2)
        image[top:top + height, left:left + width] = rng.integers(120, 256)
    return images


def write_fake_mnist(folder: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """Write the four IDX files (official names, gzipped) of a rectangles data set into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", rectangles(n_train, seed))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(n_train, np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rectangles(n_test, seed + 1))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(n_test, np.uint8))
    return folder


@pytest.fixture(scope="session")
def fake_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 660 + 40 image rectangles data set in MNIST's file layout (validation pool: the last 66)."""
    return write_fake_mnist(tmp_path_factory.mktemp("fake_mnist"), n_train=660, n_test=40)
