"""Adobe Composition-1k rules on a fake release tree: resize only when smaller, top-left crop, truncation,
background order, output names, official trimaps; checked against a per-pixel re-statement of the script."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.compose.composite import adobe_background, composite_truncate
from pipeline.compose.composed_set import build_composed_set
from pipeline.core.manifest import read_manifest
from pipeline.core.io import read_alpha, read_rgb, read_trimap
from tests.test_compose import fake_adobe as fa


def adobe_script_pixelwise(fg_path: Path, alpha_path: Path, bg_path: Path) -> np.ndarray:
    """Composition_code.py re-stated pixel by pixel (PIL, Python floats, int() per channel)."""
    fg = Image.open(fg_path).convert("RGB")
    a = Image.open(alpha_path).convert("L")
    w, h = fg.size
    bg = Image.open(bg_path).convert("RGB")
    bw, bh = bg.size
    ratio = w / bw if w / bw > h / bh else h / bh
    if ratio > 1:
        bg = bg.resize((math.ceil(bw * ratio), math.ceil(bh * ratio)), Image.BICUBIC)
    bg = bg.crop((0, 0, w, h))
    f, b, al = fg.load(), bg.load(), a.load()
    out = np.zeros((h, w, 3), np.uint8)
    for y in range(h):
        for x in range(w):
            alpha = al[x, y] / 255
            if alpha >= 1:
                out[y, x] = f[x, y]
            elif alpha > 0:
                out[y, x] = [int(alpha * f[x, y][c] + (1 - alpha) * b[x, y][c]) for c in range(3)]
            else:
                out[y, x] = b[x, y]
    return out


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict]:
    root = tmp_path_factory.mktemp("adobe")
    paths = fa.make_fake_adobe(root)
    out = root / "composed"
    summary = build_composed_set(*fa.compose_params(fa.comp1k_cfg(paths)), out, workers=2)
    return paths, out, summary


def test_background_resized_only_when_smaller() -> None:
    rng = np.random.default_rng(0)
    larger = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = adobe_background(Image.fromarray(larger), width=16, height=20)
    assert np.array_equal(out, larger[:20, :16]), "a larger background must be cropped top-left, not resized"
    smaller = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)          # ratio = max(16/10, 20/8) = 2.5
    out = adobe_background(Image.fromarray(smaller), width=16, height=20)
    expected = np.asarray(Image.fromarray(smaller).resize((25, 20), Image.BICUBIC))[:20, :16]
    assert out.shape == (20, 16, 3) and np.array_equal(out, expected)
    cv_cubic = cv2.resize(smaller, (25, 20), interpolation=cv2.INTER_CUBIC)[:20, :16]
    assert not np.array_equal(out, cv_cubic), "PIL bicubic (the reference's) must be used, not OpenCV's"
    wide = rng.integers(0, 256, (10, 100, 3), dtype=np.uint8)           # wide enough, too short: resized
    out = adobe_background(Image.fromarray(wide), width=16, height=20)
    expected = np.asarray(Image.fromarray(wide).resize((200, 20), Image.BICUBIC))[:20, :16]
    assert np.array_equal(out, expected)


def test_ceil_of_the_scaled_size() -> None:
    bg = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    out_w, out_h = 10, 20                                              # ratio 20/7: 9·20/7 = 25.71 -> 26
    expected = np.asarray(Image.fromarray(bg).resize((26, 20), Image.BICUBIC))[:20, :10]
    assert np.array_equal(adobe_background(Image.fromarray(bg), out_w, out_h), expected)


def test_blend_truncates_not_rounds() -> None:
    fg = np.full((4, 4, 3), 200, np.uint8)
    bg = np.full((4, 4, 3), 51, np.uint8)
    alpha = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16 + 7
    exact = alpha[..., None] / 255.0 * fg.astype(float) + (1 - alpha[..., None] / 255.0) * bg.astype(float)
    out = composite_truncate(fg, bg, alpha)
    assert np.array_equal(out, np.floor(exact).astype(np.uint8))
    assert not np.array_equal(out, np.round(exact).astype(np.uint8))
    assert np.array_equal(composite_truncate(fg, bg, np.full((4, 4), 255, np.uint8)), fg)
    assert np.array_equal(composite_truncate(fg, bg, np.zeros((4, 4), np.uint8)), bg)


def test_test_split_matches_the_script(composed: tuple) -> None:
    paths, out, _ = composed
    test_dir = paths["root"] / "Test_set" / "Adobe-licensed images"
    voc_names = (paths["root"] / "Test_set" / "test_bg_names.txt").read_text().split()
    names = (out / "test" / "list.txt").read_text().split()
    assert names == ["t1_0", "t1_1", "t2_0", "t2_1"], "names are <fg stem>_<i>, in list order"
    for j, fg_name in enumerate(fa.TEST_FGS):
        for k in range(fa.N_BG_TEST):
            name = f"{Path(fg_name).stem}_{k}"
            bg_path = paths["voc"] / voc_names[j * fa.N_BG_TEST + k]       # consumed in order
            expected = adobe_script_pixelwise(test_dir / "fg" / fg_name, test_dir / "alpha" / fg_name, bg_path)
            assert np.array_equal(read_rgb(out / "test" / "image" / f"{name}.png"), expected), name
            alpha = read_alpha(out / "test" / "alpha" / f"{name}.png")
            assert np.array_equal(read_rgb(out / "test" / "image" / f"{name}.png")[0, 0],
                                  np.array(fa.bg_colour(j * fa.N_BG_TEST + k, "test"), np.uint8)) and alpha[0, 0] == 0
            assert np.array_equal(read_trimap(out / "test" / "trimap" / f"{name}.png"), fa.official_trimap(name))
    assert not (out / "test" / "fg").exists(), "comp1k test fg/bg are not written unless asked"


def test_train_and_val_splits(composed: tuple) -> None:
    paths, out, summary = composed
    train = (out / "train" / "fg_list.txt").read_text().split()
    val = (out / "val" / "list.txt").read_text().split()
    val_fgs = {v.rsplit("_", 1)[0] for v in val}
    assert len(val_fgs) == 1 and len(train) == 3 and not val_fgs & set(train), "val held out, disjoint"
    assert train == [Path(n).stem for n in fa.TRAIN_FGS if Path(n).stem not in val_fgs], "list order kept"
    coco = (paths["root"] / "Training_set" / "training_bg_names.txt").read_text().split()
    expected_bgs = [str((paths["coco"] / coco[i * fa.N_BG_TRAIN + k]).resolve())
                    for i, n in enumerate(fa.TRAIN_FGS) if Path(n).stem in train for k in range(fa.N_BG_TRAIN)]
    assert (out / "train" / "bg_list.txt").read_text().split() == expected_bgs
    for name in train:
        assert read_rgb(out / "train" / "fg" / f"{name}.png").shape == (fa.FG_H, fa.FG_W, 3)
    trimap = read_trimap(out / "val" / "trimap" / f"{val[0]}.png")
    assert set(np.unique(trimap)) <= {0, 128, 255}
    records = read_manifest(out / "manifest.jsonl")
    assert {r["path"] for r in records} >= {f"val/bg/{val[0]}.png", "train/bg_list.txt", "test/list.txt"}
    image_record = next(r for r in records if r["path"] == "test/image/t1_0.png")
    assert image_record["sources"][0].startswith("comp1k:Test_set/") and image_record["sources"][2].startswith("voc:")
    assert summary["counts"]["test"]["image"] == 4 and summary["source"] == "comp1k"


def test_comp1k_trains_on_every_foreground_by_default(tmp_path: Path) -> None:
    """The published protocol: no validation foreground is taken out of the Adobe training set (431 -> 431),
    whatever compose.n_val (the synthetic set's size) says; compose.comp1k.n_val opts out explicitly."""
    paths = fa.make_fake_adobe(tmp_path / "adobe")
    cfg = fa.comp1k_cfg(paths)
    del cfg["comp1k"]["n_val"]
    summary = build_composed_set(*fa.compose_params(cfg), tmp_path / "composed", workers=1)
    train = (tmp_path / "composed" / "train" / "fg_list.txt").read_text().split()
    assert train == [Path(n).stem for n in fa.TRAIN_FGS]
    assert (tmp_path / "composed" / "val" / "list.txt").read_text() == "" and summary["samples"]["val"] == 0
