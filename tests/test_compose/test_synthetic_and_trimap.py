"""The procedural default set (fine structure, valid trimaps, byte-identical reruns) and the trimap rules."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from pipeline.compose.composed_set import build_composed_set
from tests.test_compose.fake_adobe import compose_params
from pipeline.core.manifest import read_manifest, set_hash
from pipeline.compose.synthetic import FAMILIES, RECIPES, generate_foreground
from pipeline.core.trimap import fixed_trimap, random_trimap, trimap_from_kernels
from pipeline.core.io import read_alpha, read_rgb, read_trimap

SMOKE = {"source": "synthetic", "seed": 6, "n_train_fg": 2, "n_val": 2, "n_test": 2, "size": 48, "n_train_bg": 2}


def _disk(size: int = 64, radius: float = 18.0) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    d = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip((radius - d) * 60 + 128, 0, 255).astype(np.uint8)    # hard disk with a 1-2 px soft rim


def test_trimap_matches_independent_erosion() -> None:
    alpha = _disk()
    for fg_k, bg_k in [(1, 1), (5, 9), (29, 3)]:
        trimap = trimap_from_kernels(alpha, fg_k, bg_k)
        fg_ref = ndimage.binary_erosion(alpha == 255, structure=cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (fg_k, fg_k)).astype(bool), border_value=1)
        bg_ref = ndimage.binary_erosion(alpha == 0, structure=cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (bg_k, bg_k)).astype(bool), border_value=1)
        assert np.array_equal(trimap == 255, fg_ref) and np.array_equal(trimap == 0, bg_ref)
    exact = trimap_from_kernels(alpha, 1, 1)
    assert np.array_equal(exact == 128, (alpha > 0) & (alpha < 255)), "size 1: unknown = fractional alpha"


def test_random_trimap_values_and_seeding() -> None:
    alpha = _disk()
    draws = [random_trimap(alpha, np.random.default_rng(s)) for s in range(12)]
    for t in draws:
        assert t.dtype == np.uint8 and set(np.unique(t)) <= {0, 128, 255}
        assert np.all(t[(alpha > 0) & (alpha < 255)] == 128)
    assert len({(t == 128).sum() for t in draws}) > 3, "kernel sizes must vary between draws"
    assert np.array_equal(fixed_trimap(alpha, [1, 2]), fixed_trimap(alpha, [1, 2]))
    widest = max((t == 128).sum() for t in draws)
    assert widest <= (trimap_from_kernels(alpha, 29, 29) == 128).sum()
    with pytest.raises(ValueError, match="kernel_range"):
        random_trimap(alpha, np.random.default_rng(0), (0, 3))


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_has_fine_structure(family: str) -> None:
    from pipeline.compose import synthetic_layers as L

    rng = np.random.default_rng(5)
    colour, alpha = RECIPES[family](rng, (128, 128))
    alpha = cv2.resize(np.clip(alpha, 0, 1), (64, 64), interpolation=cv2.INTER_AREA)
    fractional = np.mean((alpha > 0.02) & (alpha < 0.98))
    assert fractional > 0.01, f"{family}: only {fractional:.3f} of pixels are fractional"
    fg, _ = L.unpremultiply((cv2.resize(colour, (64, 64), interpolation=cv2.INTER_AREA), alpha))
    assert fg.min() >= 0 and fg.max() <= 1


def test_generated_foreground_is_seeded() -> None:
    fg1, a1, kind1 = generate_foreground([1, 2], 48)
    fg2, a2, kind2 = generate_foreground([1, 2], 48)
    fg3, a3, _ = generate_foreground([1, 3], 48)
    assert kind1 == kind2 and np.array_equal(fg1, fg2) and np.array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    assert fg1.shape == (48, 48, 3) and a1.dtype == np.uint8


def test_synthetic_set_is_deterministic_and_valid(tmp_path: Path) -> None:
    one = build_composed_set(*compose_params(SMOKE), tmp_path / "one", workers=1)
    two = build_composed_set(*compose_params(SMOKE), tmp_path / "two", workers=2)
    assert one["set_hash"] == two["set_hash"], "same params must give byte-identical outputs"
    assert (tmp_path / "one" / "manifest.jsonl").read_bytes() == (tmp_path / "two" / "manifest.jsonl").read_bytes()
    changed = build_composed_set(*compose_params({**SMOKE, "seed": 7, "n_train_fg": 0, "n_val": 0, "n_test": 1}), tmp_path / "three",
                                 workers=1)
    assert changed["set_hash"] != one["set_hash"]
    root = tmp_path / "one"
    records = read_manifest(root / "manifest.jsonl")
    assert set_hash(records) == one["set_hash"] == json.loads((root / "summary.json").read_text())["set_hash"]
    assert one["counts"]["train"] == {"fg": 2, "alpha": 2, "bg": 2, "list": 2}
    assert one["counts"]["test"]["image"] == 2 and one["counts"]["val"]["fg"] == 2
    fractional, unknown = [], []
    for split in ("val", "test"):
        for name in (root / split / "list.txt").read_text().split():
            alpha = read_alpha(root / split / "alpha" / f"{name}.png")
            trimap = read_trimap(root / split / "trimap" / f"{name}.png")
            assert np.all(trimap[(alpha > 0) & (alpha < 255)] == 128)
            assert read_rgb(root / split / "image" / f"{name}.png").shape[:2] == alpha.shape == (48, 48)
            fractional.append(np.mean((alpha > 0) & (alpha < 255)))
            unknown.append(np.mean(trimap == 128))
    assert min(fractional) > 0.005 and 0.02 < np.mean(unknown) < 0.9
    train_names = set((root / "train" / "fg_list.txt").read_text().split())
    assert not train_names & {n.rsplit("_", 1)[0] for n in (root / "test" / "list.txt").read_text().split()}
    for line in (root / "train" / "bg_list.txt").read_text().split():
        assert (root / "train" / line).is_file()
