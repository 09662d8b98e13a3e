"""Evaluation sets on disk: which images they hold, how to read one sample, whether they changed.

Two layouts are read (the folder names are configurable per set):
- the composed test split and evaluation-only sets: `<root>/{image,alpha,trimap}/<name>.<ext>`, with an optional
  `<root>/list.txt` (one name per line, used as written);
- alphamatting.com: `<root>/{image,alpha,trimap1,trimap2}/<name>.png` (pick the trimap folder per set).
Names and files are found by `pipeline.core.io` (`set_names`, `index_images`), the same rules the compose
stage's evaluation-set validator applies: `list.txt` when present, else the image folder's files; any accepted
extension (png, jpg, jpeg, bmp, tif, tiff) in any case, for images, alphas and trimaps alike.

An evaluation-only set has a manifest (`evalsets/<name>/manifest.jsonl`, sha256 per file, written by the
`evalsets@<name>` stage, a DVC dependency of evaluation); `check_manifest` verifies the files against it.
The composed set's split is checked the same way against `data/composed/manifest.jsonl` (written by the compose
stage) by `check_composed_manifest`: a ground truth edited after composition is named, never evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.core.io import (ImageError, check_same_size, describe_expected, index_images, read_alpha, read_rgb,
                              read_trimap, set_names)
from pipeline.core.manifest import MANIFEST_NAME, read_manifest, sha256_file

TRIMAP_DIRS = ("trimap", "trimap1", "trimap2")
DEFAULT_SET = "test"
KINDS = ("image", "alpha", "trimap")


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

    def folder(self, kind: str) -> Path:
        """The folder of `kind` ('image', 'alpha' or 'trimap')."""
        return self.root / {"image": self.image_dir, "alpha": self.alpha_dir, "trimap": self.trimap_dir}[kind]

    def index(self) -> dict[str, dict[str, Path]]:
        """{kind: {name: file}} of the three folders (one listing each; ImageError when a name has two files)."""
        return {kind: index_images(self.folder(kind)) for kind in KINDS}

    def path(self, kind: str, name: str, index: Mapping[str, Mapping[str, Path]] | None = None) -> Path | None:
        """The file of `name` in the folder of `kind` (any accepted extension, any case), or None."""
        return (index or self.index())[kind].get(name)

    def image_path(self, name: str) -> Path | None:
        return self.path("image", name)

    def alpha_path(self, name: str) -> Path | None:
        return self.path("alpha", name)

    def trimap_path(self, name: str) -> Path | None:
        return self.path("trimap", name)


def list_names(eval_set: EvalSet) -> list[str]:
    """The set's image names: `list.txt` when present (as written), else the sorted names of the image folder.

    Raises DatasetError for a missing root, an empty list or duplicate names.
    """
    if not eval_set.root.is_dir():
        raise DatasetError(f"set '{eval_set.name}': folder {eval_set.root} not found")
    try:
        names, _ = set_names(eval_set.root, eval_set.image_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise DatasetError(f"set '{eval_set.name}': {exc}") from exc
    return names


def find_missing(eval_set: EvalSet, names: list[str], index: Mapping[str, Mapping[str, Path]] | None = None
                 ) -> list[str]:
    """Every image, alpha or trimap of `names` that does not exist, as `<folder>/<name>.{png,jpg,...}`."""
    index = index or eval_set.index()
    return [describe_expected(eval_set.folder(kind), name) for name in names for kind in KINDS
            if name not in index[kind]]


def load_sample(eval_set: EvalSet, name: str, index: Mapping[str, Mapping[str, Path]] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read (image H×W×3 RGB, alpha H×W, trimap H×W) uint8, validated; mismatched sizes raise ImageError."""
    index = index or eval_set.index()
    paths = {}
    for kind in KINDS:
        paths[kind] = index[kind].get(name)
        if paths[kind] is None:
            raise ImageError(f"set '{eval_set.name}': {describe_expected(eval_set.folder(kind), name)} not found")
    image = read_rgb(paths["image"])
    alpha = read_alpha(paths["alpha"])
    trimap = read_trimap(paths["trimap"])
    check_same_size({"image": image, "alpha": alpha, "trimap": trimap}, f"set '{eval_set.name}', image '{name}'")
    return image, alpha, trimap


def check_manifest(eval_set: EvalSet, manifest_dir: str | Path) -> int:
    """Verify that every file `eval_set` evaluates has the sha256 its manifest records; return the file count.

    `manifest_dir` is the `evalsets@<name>` stage output (`manifest.jsonl`, paths relative to the set's root).
    DatasetError names the manifest when it is missing, and the file when one is missing from the manifest or
    changed since (then the DVC dependency is stale: `dvc repro` rewrites the manifest and reruns evaluation).
    """
    manifest = Path(manifest_dir) / MANIFEST_NAME
    if not manifest.is_file():
        raise DatasetError(f"set '{eval_set.name}': manifest {manifest} not found (run `dvc repro "
                           f"evalsets@{eval_set.name}`, or `python stages/compose.py --eval-only {eval_set.root} "
                           f"--out {Path(manifest_dir)}`)")
    return _check_against_manifest(eval_set, manifest, eval_set.root,
                                   "rerun `dvc repro` so that evaluation depends on the new content",
                                   "the set changed after its manifest was written: rerun `dvc repro`")


def check_composed_manifest(eval_set: EvalSet, composed_root: str | Path) -> int | None:
    """Verify the files `eval_set` (a split of the composed set at `composed_root`, e.g. its test/) evaluates —
    image, alpha (the ground truth) and trimap of every listed name, and `list.txt` — against the sha256 of
    `<composed_root>/manifest.jsonl` written by the compose stage; return the number of files checked, or None
    when the folder has no manifest (a set not written by the compose stage: nothing to check against).

    DatasetError names the file that is not in the manifest or differs from it: the composed set was edited
    after composition (DVC would then report `data/composed` as modified).
    """
    root = Path(composed_root)
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        return None
    fix = (f"the composed set was changed after composition; restore it with `dvc checkout {root}` or compose it "
           f"again with `dvc repro -f compose`")
    return _check_against_manifest(eval_set, manifest, root, fix, fix)


def _check_against_manifest(eval_set: EvalSet, manifest: Path, manifest_root: Path, changed_fix: str,
                            unlisted_fix: str) -> int:
    """Check the files of `eval_set` against `manifest` (paths relative to `manifest_root`); see the callers."""
    try:
        recorded = {r["path"]: r["sha256"] for r in read_manifest(manifest)}
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"set '{eval_set.name}': {manifest} is not a readable manifest ({exc})") from exc
    index = eval_set.index()
    files = [path for name in list_names(eval_set) for kind in KINDS
             if (path := index[kind].get(name)) is not None]  # a missing file is reported by evaluation
    listed = eval_set.root / "list.txt"
    if listed.is_file():
        files.insert(0, listed)
    checked = 0
    for path in files:
        try:
            rel = path.relative_to(manifest_root).as_posix()
        except ValueError:
            rel = path.as_posix()
        if rel not in recorded:
            if path == listed:
                continue  # a manifest written before list.txt was recorded
            raise DatasetError(f"set '{eval_set.name}': {path} is not in {manifest} ({unlisted_fix})")
        if sha256_file(path) != recorded[rel]:
            raise DatasetError(f"set '{eval_set.name}': {path} changed after {manifest} was written (sha256 "
                               f"differs): {changed_fix}")
        checked += 1
    return checked


def _trimap_dir_for(root: Path, requested: str | None, key: str) -> str:
    if requested is None:
        return "trimap" if (root / "trimap").is_dir() or not (root / "trimap1").is_dir() else "trimap1"
    if requested not in TRIMAP_DIRS:
        raise DatasetError(f"params.yaml: {key}.trimap_dir must be one of {TRIMAP_DIRS}, got {requested!r}")
    return requested


def resolve_sets(default_root: str | Path, sets_cfg: Mapping[str, Any] | None) -> list[EvalSet]:
    """The default test split (named 'test') followed by every `evaluate.sets` entry.

    Each entry is `name: {path: ..., trimap_dir: trimap|trimap1|trimap2}`; a missing `trimap_dir` means
    `trimap/` when that folder exists, else `trimap1/`. (The shorthand `name: path` is refused: the DVC stage
    `evalsets@<name>` reads `path` from the mapping, and DVC cannot parse the shorthand.)
    """
    sets = [EvalSet(DEFAULT_SET, Path(default_root))]
    for name, entry in (sets_cfg or {}).items():
        key = f"evaluate.sets.{name}"
        if name == DEFAULT_SET:
            raise DatasetError(f"params.yaml: {key}: the name '{DEFAULT_SET}' is reserved for the composed split")
        if not isinstance(entry, Mapping) or "path" not in entry:
            raise DatasetError(f"params.yaml: {key} must be a mapping with 'path' (and optionally 'trimap_dir'), "
                               f"e.g. {{path: {entry if isinstance(entry, (str, Path)) else '/data/set'}}}; "
                               f"got {entry!r}")
        unknown = set(entry) - {"path", "trimap_dir"}
        if unknown:
            raise DatasetError(f"params.yaml: {key} has unknown keys {sorted(unknown)} (allowed: path, trimap_dir)")
        root = Path(entry["path"])
        if not root.is_dir():
            raise DatasetError(f"params.yaml: {key}.path: folder {root} not found")
        sets.append(EvalSet(str(name), root, _trimap_dir_for(root, entry.get("trimap_dir"), key)))
    return sets
