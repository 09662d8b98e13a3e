"""Evaluation-only sets of real photographs (image/, alpha/, trimap*/): validate and write a manifest.

No composition happens: e.g. ../shared/data/alphamatting-lowres has image/, alpha/, trimap1/, trimap2/ with
files GT01.png … GT13.png. Every image must have an alpha and a trimap in each trimap folder, of the same
size; alphas are single-channel 8-bit (identical RGB channels accepted), trimaps exactly 0/128/255.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.compose.layouts import IMAGE_SUFFIXES, image_files
from pipeline.core.manifest import SUMMARY_NAME, count_by, file_record, write_manifest
from pipeline.core.io import ImageError, atomic_dir, check_same_size, read_alpha, read_rgb, read_trimap, write_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSet:
    """A validated evaluation set: names (file stems, sorted) and where each kind of file lives."""
    root: Path
    names: list[str]
    image: dict[str, Path]
    alpha: dict[str, Path]
    trimaps: dict[str, dict[str, Path]]            # trimap folder name -> name -> path


def _index(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in image_files(folder)}


def validate_eval_set(root: str | Path, trimap_dirs: list[str] | None = None, image_dir: str = "image",
                      alpha_dir: str = "alpha") -> EvalSet:
    """Check every file of an evaluation set (raises ImageError / FileNotFoundError naming the file)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: evaluation set folder not found")
    if trimap_dirs is None:
        trimap_dirs = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("trimap"))
    if not trimap_dirs:
        raise FileNotFoundError(f"{root}: no trimap folder (expected 'trimap' or 'trimap1', 'trimap2', ...)")
    images, alphas = _index(root / image_dir), _index(root / alpha_dir)
    trimaps = {d: _index(root / d) for d in trimap_dirs}
    for name, path in images.items():
        if name not in alphas:
            raise FileNotFoundError(f"{path}: no alpha '{name}' with suffix {IMAGE_SUFFIXES} in {root / alpha_dir}")
        image, alpha = read_rgb(path), read_alpha(alphas[name])
        arrays = {str(path): image, str(alphas[name]): alpha}
        for folder, index in trimaps.items():
            if name not in index:
                raise FileNotFoundError(f"{path}: no trimap '{name}' in {root / folder}")
            arrays[str(index[name])] = read_trimap(index[name])
        check_same_size(arrays, f"evaluation sample '{name}'")
        for folder, index in trimaps.items():
            trimap = arrays[str(index[name])]
            disagree = float(np.mean((trimap == 255) & (alpha < 255)) + np.mean((trimap == 0) & (alpha > 0)))
            if disagree > 0.01:
                logger.warning("%s: alpha disagrees with the trimap's known region on %.1f%% of pixels",
                               index[name], 100 * disagree)
    orphans = sorted(set(alphas) - set(images))
    if orphans:
        raise ImageError(f"{root / alpha_dir}: alphas without an image: {orphans[:5]}")
    return EvalSet(root, sorted(images), images, alphas, trimaps)


def write_eval_manifest(root: str | Path, out_dir: str | Path, trimap_dirs: list[str] | None = None) -> dict[str, Any]:
    """Validate the set at `root` and write out_dir/manifest.jsonl and summary.json (paths relative to root)."""
    evalset = validate_eval_set(root, trimap_dirs)
    records = []
    for name in evalset.names:
        records.append(file_record(evalset.root, evalset.image[name], "eval", "image", []))
        records.append(file_record(evalset.root, evalset.alpha[name], "eval", "alpha", []))
        for folder, index in evalset.trimaps.items():
            records.append(file_record(evalset.root, index[name], "eval", folder, []))
    with atomic_dir(out_dir) as tmp:
        _, digest = write_manifest(tmp, records)
        summary = {"source": "eval-only", "root": str(evalset.root.resolve()), "names": evalset.names,
                   "trimap_dirs": list(evalset.trimaps), "set_hash": digest, "n_files": len(records),
                   "counts": count_by(records, "split", "kind")}
        write_json(tmp / SUMMARY_NAME, summary)
    logger.info("evaluation set %s: %d samples valid, manifest in %s", root, len(evalset.names), out_dir)
    return summary
