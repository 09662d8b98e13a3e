"""Evaluation sets on disk: which images they hold and how to read one sample.

Two layouts are read (the folder names are configurable per set):
- the composed test split and evaluation-only sets: `<root>/{image,alpha,trimap}/<name>.png`, with an optional
  `<root>/list.txt` (one name per line, no extension);
- alphamatting.com: `<root>/{image,alpha,trimap1,trimap2}/<name>.png` (pick the trimap folder per set).
Without `list.txt` the names are the stems of `image/*.png` (and `.jpg`), sorted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.core.io import check_same_size, read_alpha, read_rgb, read_trimap

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TRIMAP_DIRS = ("trimap", "trimap1", "trimap2")
DEFAULT_SET = "test"


class DatasetError(ValueError):
    """A malformed evaluation set or `evaluate.sets` entry (the message names the set, key or file)."""


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set: a name (used in outputs) and its folders."""

    name: str
    root: Path
    trimap_dir: str = "trimap"
    image_dir: str = "image"
    alpha_dir: str = "alpha"

    def image_path(self, name: str) -> Path:
        """The image file of `name` (the first existing suffix of IMAGE_SUFFIXES; `.png` when none exists)."""
        for suffix in IMAGE_SUFFIXES:
            path = self.root / self.image_dir / f"{name}{suffix}"
            if path.is_file():
                return path
        return self.root / self.image_dir / f"{name}.png"

    def alpha_path(self, name: str) -> Path:
        return self.root / self.alpha_dir / f"{name}.png"

    def trimap_path(self, name: str) -> Path:
        return self.root / self.trimap_dir / f"{name}.png"


def list_names(eval_set: EvalSet) -> list[str]:
    """The set's image names: `list.txt` when present, else the sorted stems of the image folder.

    Raises DatasetError for a missing root, an empty list or duplicate names.
    """
    if not eval_set.root.is_dir():
        raise DatasetError(f"set '{eval_set.name}': folder {eval_set.root} not found")
    list_file = eval_set.root / "list.txt"
    if list_file.is_file():
        names = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
        source = str(list_file)
    else:
        image_dir = eval_set.root / eval_set.image_dir
        names = sorted(p.stem for p in image_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        source = f"{image_dir}/*.png"
    if not names:
        raise DatasetError(f"set '{eval_set.name}': no images listed in {source}")
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DatasetError(f"set '{eval_set.name}': duplicate names in {source}: {duplicates[:5]}")
    return names


def find_missing(eval_set: EvalSet, names: list[str]) -> list[Path]:
    """Every image, alpha or trimap file of `names` that does not exist."""
    missing = []
    for name in names:
        for path in (eval_set.image_path(name), eval_set.alpha_path(name), eval_set.trimap_path(name)):
            if not path.is_file():
                missing.append(path)
    return missing


def load_sample(eval_set: EvalSet, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read (image H×W×3 RGB, alpha H×W, trimap H×W) uint8, validated; mismatched sizes raise ImageError."""
    image = read_rgb(eval_set.image_path(name))
    alpha = read_alpha(eval_set.alpha_path(name))
    trimap = read_trimap(eval_set.trimap_path(name))
    check_same_size({"image": image, "alpha": alpha, "trimap": trimap}, f"set '{eval_set.name}', image '{name}'")
    return image, alpha, trimap


def _trimap_dir_for(root: Path, requested: str | None, key: str) -> str:
    if requested is None:
        return "trimap" if (root / "trimap").is_dir() or not (root / "trimap1").is_dir() else "trimap1"
    if requested not in TRIMAP_DIRS:
        raise DatasetError(f"params.yaml: {key}.trimap_dir must be one of {TRIMAP_DIRS}, got {requested!r}")
    return requested


def resolve_sets(default_root: str | Path, sets_cfg: Mapping[str, Any] | None) -> list[EvalSet]:
    """The default test split (named 'test') followed by every `evaluate.sets` entry.

    Each entry is `name: {path: ..., trimap_dir: trimap|trimap1|trimap2}` or the shorthand `name: path`; a
    missing `trimap_dir` means `trimap/` when that folder exists, else `trimap1/`.
    """
    sets = [EvalSet(DEFAULT_SET, Path(default_root))]
    for name, entry in (sets_cfg or {}).items():
        key = f"evaluate.sets.{name}"
        if name == DEFAULT_SET:
            raise DatasetError(f"params.yaml: {key}: the name '{DEFAULT_SET}' is reserved for the composed split")
        if isinstance(entry, (str, Path)):
            entry = {"path": entry}
        if not isinstance(entry, Mapping) or "path" not in entry:
            raise DatasetError(f"params.yaml: {key} must be a path or a mapping with 'path', got {entry!r}")
        unknown = set(entry) - {"path", "trimap_dir"}
        if unknown:
            raise DatasetError(f"params.yaml: {key} has unknown keys {sorted(unknown)} (allowed: path, trimap_dir)")
        root = Path(entry["path"])
        if not root.is_dir():
            raise DatasetError(f"params.yaml: {key}.path: folder {root} not found")
        sets.append(EvalSet(str(name), root, _trimap_dir_for(root, entry.get("trimap_dir"), key)))
    return sets
