"""Evaluation-only sets of real photographs (image/, alpha/, trimap*/): validate and write a manifest.

No composition happens: e.g. ../shared/data/alphamatting-lowres has image/, alpha/, trimap1/, trimap2/ with
files GT01.png … GT13.png. Every image must have an alpha and a trimap in each trimap folder, of the same
size; alphas are single-channel 8-bit (identical RGB channels accepted), trimaps exactly 0/128/255. The manifest
(sha256 per file) is what the `evalsets@<name>` DVC stage writes to `results/evalsets/<name>/`: evaluation
depends on it, so a changed ground truth reruns evaluation, and evaluation checks the files it reads against it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.io import (ImageError, atomic_dir, check_same_size, describe_expected, index_images, read_alpha,
                              read_rgb, read_trimap, set_names, write_json)
from pipeline.core.manifest import SUMMARY_NAME, count_by, file_record, write_manifest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSet:
    """A validated evaluation set: names (file stems, sorted) and where each kind of file lives."""
    root: Path
    names: list[str]                                # as evaluation lists them (list.txt, else sorted)
    image: dict[str, Path]
    alpha: dict[str, Path]
    trimaps: dict[str, dict[str, Path]]            # trimap folder name -> name -> path


def _lookup(index: dict[str, Path], folder: Path, name: str, what: str, wanted_by: Path | str) -> Path:
    if name not in index:
        raise FileNotFoundError(f"{wanted_by}: no {what} {describe_expected(folder, name)}")
    return index[name]


def validate_eval_set(root: str | Path, trimap_dirs: list[str] | None = None, image_dir: str = "image",
                      alpha_dir: str = "alpha") -> EvalSet:
    """Check every file of an evaluation set (raises ImageError / FileNotFoundError naming the file).

    The names and files are found exactly as evaluation finds them (`pipeline.core.io.set_names`,
    `index_images`): `list.txt` when present, else the image folder; any accepted extension in any case.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: evaluation set folder not found")
    if trimap_dirs is None:
        trimap_dirs = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("trimap"))
    if not trimap_dirs:
        raise FileNotFoundError(f"{root}: no trimap folder (expected 'trimap' or 'trimap1', 'trimap2', ...)")
    try:
        names, source = set_names(root, image_dir)
    except ValueError as exc:
        raise ImageError(str(exc)) from exc
    image_index, alpha_index = index_images(root / image_dir), index_images(root / alpha_dir)
    trimap_index = {d: index_images(root / d) for d in trimap_dirs}
    images, alphas, trimaps = {}, {}, {d: {} for d in trimap_dirs}
    for name in names:
        images[name] = path = _lookup(image_index, root / image_dir, name, "image", source)
        alphas[name] = _lookup(alpha_index, root / alpha_dir, name, "alpha", path)
        image, alpha = read_rgb(path), read_alpha(alphas[name])
        arrays = {str(path): image, str(alphas[name]): alpha}
        for folder in trimap_dirs:
            trimaps[folder][name] = _lookup(trimap_index[folder], root / folder, name, "trimap", path)
            arrays[str(trimaps[folder][name])] = read_trimap(trimaps[folder][name])
        check_same_size(arrays, f"evaluation sample '{name}'")
        for folder, index in trimaps.items():
            trimap = arrays[str(index[name])]
            disagree = float(np.mean((trimap == 255) & (alpha < 255)) + np.mean((trimap == 0) & (alpha > 0)))
            if disagree > 0.01:
                logger.warning("%s: alpha disagrees with the trimap's known region on %.1f%% of pixels",
                               index[name], 100 * disagree)
    orphans = sorted(set(alpha_index) - set(names))
    if orphans:
        raise ImageError(f"{root / alpha_dir}: alphas without a listed image ({source}): {orphans[:5]}")
    return EvalSet(root, list(names), images, alphas, trimaps)


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
        summary = {"source": "eval-only", "root": str(root), "names": evalset.names,
                   "trimap_dirs": list(evalset.trimaps), "set_hash": digest, "n_files": len(records),
                   "counts": count_by(records, "split", "kind")}
        write_json(tmp / SUMMARY_NAME, summary)
    logger.info("evaluation set %s: %d samples valid, manifest in %s", root, len(evalset.names), out_dir)
    return summary
