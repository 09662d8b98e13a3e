"""A tiny fake Composition-1k tree (Adobe's release layout) with COCO/VOC background folders, for tests.

Foregrounds are 20×16 (H×W). Backgrounds are constant colours (so the one used can be read back from the
composite where α = 0) of three kinds: smaller than the foreground (must be resized), larger (must be
cropped top-left, never resized) and equal. Official test trimaps carry a checkerboard that no trimap
generator would produce from the alpha, so "the official one was used" is checkable.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FG_H, FG_W = 20, 16
TRAIN_FGS = ["a1.jpg", "a2.png", "o1.png", "o2.png"]          # a* in 'Adobe-licensed images', o* in 'Other'
TEST_FGS = ["t1.png", "t2.png"]
N_BG_TRAIN, N_BG_TEST = 2, 2
# background sizes (H, W) cycled: smaller (resize), larger (crop), equal
BG_SIZES = [(8, 10), (30, 40), (FG_H, FG_W)]


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = array[..., ::-1] if array.ndim == 3 else array
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr))


def _foreground(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    fg = rng.integers(0, 256, (FG_H, FG_W, 3), dtype=np.uint8)
    alpha = np.zeros((FG_H, FG_W), np.uint8)
    alpha[5:15, 4:12] = 255
    alpha[3:5, 2:14] = rng.integers(1, 255, (2, 12), dtype=np.uint8)       # fractional band
    return fg, alpha


def bg_colour(index: int, split: str) -> tuple[int, int, int]:
    """Distinct constant colour of background `index` of a split."""
    base = 10 if split == "train" else 130
    return (base + 7 * index, 200 - 9 * index, 3 * index + (50 if split == "train" else 0))


def official_trimap(name: str) -> np.ndarray:
    """The fake official trimap of composite `name`: checkerboard of 0/128/255 (not derivable from alpha)."""
    yy, xx = np.mgrid[0:FG_H, 0:FG_W]
    values = np.array([0, 128, 255], np.uint8)
    return values[(yy + xx + len(name)) % 3]


def make_fake_adobe(root: Path, seed: int = 0) -> dict[str, Path]:
    """Create the tree under `root`; returns {'root', 'coco', 'voc'}."""
    rng = np.random.default_rng(seed)
    data, coco, voc = root / "Combined_Dataset", root / "coco" / "train2014", root / "voc"
    train, test = data / "Training_set", data / "Test_set"
    for name in TRAIN_FGS:
        subset = "Adobe-licensed images" if name.startswith("a") else "Other"
        fg, alpha = _foreground(rng)
        if name.endswith(".jpg"):
            (train / subset / "fg").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(train / subset / "fg" / name), fg[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 95])
        else:
            _png(train / subset / "fg" / name, fg)
        _png(train / subset / "alpha" / name, alpha)   # the release names alphas like their fg (jpg included)
    (train / "training_fg_names.txt").write_text("\n".join(TRAIN_FGS) + "\n")
    for name in TEST_FGS:
        fg, alpha = _foreground(rng)
        _png(test / "Adobe-licensed images" / "fg" / name, fg)
        _png(test / "Adobe-licensed images" / "alpha" / name, alpha)
        for k in range(N_BG_TEST):
            composite = f"{Path(name).stem}_{k}"
            _png(test / "Adobe-licensed images" / "trimaps" / f"{composite}.png", official_trimap(composite))
    (test / "test_fg_names.txt").write_text("\n".join(TEST_FGS) + "\n")
    for split, folder, count, list_file in (("train", coco, len(TRAIN_FGS) * N_BG_TRAIN,
                                             train / "training_bg_names.txt"),
                                            ("test", voc, len(TEST_FGS) * N_BG_TEST, test / "test_bg_names.txt")):
        names = []
        for i in range(count):
            name = f"COCO_train2014_{i:012d}.png" if split == "train" else f"2008_{i:06d}.png"
            h, w = BG_SIZES[i % len(BG_SIZES)]
            _png(folder / name, np.full((h, w, 3), bg_colour(i, split), np.uint8))
            names.append(name)
        list_file.write_text("\n".join(names) + "\n")
    return {"root": data, "coco": coco, "voc": voc}


def comp1k_cfg(paths: dict[str, Path], **extra: object) -> dict:
    """A resolved compose section for the fake tree (1 val foreground held out on purpose via comp1k.n_val, 2
    backgrounds per foreground)."""
    cfg = {"source": "comp1k", "seed": 3, "n_val": 1, "n_train_fg": 0, "n_test": 0, "size": 0,
           "comp1k": {"root": str(paths["root"]), "coco_dir": str(paths["coco"]), "voc_dir": str(paths["voc"]),
                      "n_bg_train": N_BG_TRAIN, "n_bg_test": N_BG_TEST, "n_bg_val": 1, "n_val": 1}}
    cfg["comp1k"].update(extra)
    return cfg


def compose_params(cfg: dict) -> tuple:
    """(ComposeParams, seed) from a plain test dict (its optional 'seed' is `base.seed`), checked as params.yaml."""
    from pipeline.compose.params import ComposeParams
    from pipeline.core.params import build

    cfg = dict(cfg)
    seed = cfg.pop("seed", 0)
    return build(ComposeParams, cfg, "compose"), seed
