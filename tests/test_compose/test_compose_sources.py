"""The `folder` and `d646` layouts: names, splits, per-foreground trimaps, seeded test trimaps."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.compose.composed_set import build_composed_set
from tests.test_compose.fake_adobe import compose_params
from pipeline.core.io import read_trimap


def _write_pairs(fg_dir: Path, alpha_dir: Path, names: list[str], rng: np.random.Generator) -> None:
    fg_dir.mkdir(parents=True)
    alpha_dir.mkdir(parents=True)
    for name in names:
        alpha = np.zeros((12, 10), np.uint8)
        alpha[3:9, 2:8] = 255
        alpha[2, 2:8] = 90
        cv2.imwrite(str(fg_dir / f"{name}.png"), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
        cv2.imwrite(str(alpha_dir / f"{name}.png"), alpha)


def _write_bgs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"bg{i}.jpg"), np.full((16, 16, 3), 20 * i, np.uint8))


def test_folder_source_uses_its_trimaps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = [f"obj{i}" for i in range(5)]
    _write_pairs(tmp_path / "set" / "fg", tmp_path / "set" / "alpha", names, rng)
    (tmp_path / "set" / "trimap").mkdir()
    for name in names:
        cv2.imwrite(str(tmp_path / "set" / "trimap" / f"{name}.png"), np.full((12, 10), 128, np.uint8))
    _write_bgs(tmp_path / "bgs", 3)
    cfg = {"source": "folder", "seed": 1, "n_val": 1, "n_test": 2,
           "folder": {"root": str(tmp_path / "set"), "bg_dir": str(tmp_path / "bgs")}}
    summary = build_composed_set(*compose_params(cfg), tmp_path / "out", workers=1)
    test = (tmp_path / "out" / "test" / "list.txt").read_text().split()
    val = (tmp_path / "out" / "val" / "list.txt").read_text().split()
    train = (tmp_path / "out" / "train" / "fg_list.txt").read_text().split()
    assert len(test) == 2 and len(val) == 1 and len(train) == 2
    assert {n.rsplit("_", 1)[0] for n in test + val} | set(train) == set(names)
    assert np.all(read_trimap(tmp_path / "out" / "test" / "trimap" / f"{test[0]}.png") == 128)
    assert summary["counts"]["test"]["fg"] == 2, "fg/bg are written for non-comp1k test sets"


def test_d646_source_generates_fixed_trimaps(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    _write_pairs(tmp_path / "D646" / "Train" / "FG", tmp_path / "D646" / "Train" / "GT", ["a", "b", "c"], rng)
    _write_pairs(tmp_path / "D646" / "Test" / "FG", tmp_path / "D646" / "Test" / "GT", ["t"], rng)
    _write_bgs(tmp_path / "bg_train", 4)
    _write_bgs(tmp_path / "bg_test", 3)
    cfg = {"source": "d646", "seed": 2, "n_val": 1, "n_test": 0,
           "d646": {"root": str(tmp_path / "D646"), "bg_train_dir": str(tmp_path / "bg_train"),
                    "bg_test_dir": str(tmp_path / "bg_test"), "n_bg_test": 3, "n_bg_train": 2}}
    first = build_composed_set(*compose_params(cfg), tmp_path / "one", workers=1)
    second = build_composed_set(*compose_params(cfg), tmp_path / "two", workers=1)
    assert first["set_hash"] == second["set_hash"]
    assert (tmp_path / "one" / "test" / "list.txt").read_text().split() == ["t_0", "t_1", "t_2"]
    trimap = read_trimap(tmp_path / "one" / "test" / "trimap" / "t_0.png")
    assert set(np.unique(trimap)) <= {0, 128, 255} and np.all(trimap[2, 2:8] == 128)
