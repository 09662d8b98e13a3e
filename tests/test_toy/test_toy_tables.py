"""table.md and grid.png rendering, and the seed aggregation they report."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.toy.runner import PROTOCOL, aggregate_seeds, grid_indices, mean_std
from pipeline.toy.tables import render_table, save_grid


def _run(psnr: float, epoch: int, seed: int = 0) -> dict:
    metrics = {"psnr": psnr, "ssim": 0.9, "mae": 0.01, "mse": 0.001, "epoch": epoch}
    return {"seed": seed, "params": 1234, "n_test": 100, "best": metrics, "last": {**metrics, "epoch": 100}}


def test_mean_std_and_aggregation():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0}
    assert mean_std([5.0]) == {"mean": 5.0, "std": 0.0}
    row = aggregate_seeds([_run(30.0, 90), _run(32.0, 80, 1)])
    assert row["params"] == 1234 and row["best"]["psnr"] == {"mean": 31.0, "std": pytest.approx(2 ** 0.5)}
    assert row["best"]["epoch"]["mean"] == 85.0 and row["last"]["epoch"]["std"] == 0.0
    with pytest.raises(ValueError, match="disagree on the parameter count"):
        aggregate_seeds([_run(1, 1), {**_run(1, 1), "params": 9}])


def test_grid_indices_are_fixed_and_spread():
    assert grid_indices(10000) == [i * 9999 // 7 for i in range(8)]
    assert grid_indices(5) == [0, 1, 2, 3, 4]


def test_table_states_protocol_profile_and_rows():
    metrics = {"protocol": PROTOCOL, "profile": "cpu", "epochs": 2, "subset": 2000, "val_subset": 500,
               "test_subset": 1000, "seeds": [0, 1], "batch_size": 100, "milestones": [1],
               "results": {"fashion-mnist": {"bilinear": aggregate_seeds([_run(30.0, 2), _run(32.0, 1, 1)])},
                           "mnist": {"a2u": aggregate_seeds([_run(35.0, 2), _run(35.0, 2, 1)])}}}
    text = render_table(metrics)
    assert "protocol: ours (modelled on the authors' group harness)" in text
    assert "Profile `cpu`: 2 epochs on 2000 training images" in text and "paper" not in text.lower()
    assert "| bilinear | 1,234 | 31.00 ± 1.41 |" in text
    assert "## mnist" in text and "| a2u | 1,234 | 35.00 ± 0.00 |" in text


def test_grid_png_has_a_row_per_operator(tmp_path):
    rng = np.random.default_rng(0)
    grids = {name: {"input": rng.random((8, 32, 32)), "bilinear": rng.random((8, 32, 32)),
                    "a2u": rng.random((8, 32, 32))} for name in ("fashion-mnist", "mnist")}
    path = save_grid(grids, tmp_path / "grid.png", f"protocol: {PROTOCOL}")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] > image.shape[0] > 200
    with pytest.raises(ValueError, match="no datasets"):
        save_grid({}, tmp_path / "empty.png", "x")
