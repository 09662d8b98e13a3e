"""Build `data/composed/` from the `compose` params section (any source), atomically.

Output contract (other stages code against it):
  train/fg/<name>.png, train/alpha/<name>.png, train/fg_list.txt, train/bg_list.txt (paths relative to train/
  or absolute), train/bg/*.png (synthetic only); val/ and test/ {image,alpha,trimap[,fg,bg]}/<name>.png with
  list.txt; manifest.jsonl; summary.json (counts, source, params, set_hash).
Train, val and test foregrounds are disjoint: val foregrounds are held out of the training list (seeded). comp1k
holds none out by default (the published protocol trains on all 431 foregrounds; its val/ split is empty, and
validation data comes from `train.val_source`).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.compose import layouts
from pipeline.compose.backgrounds import PhotoBackground
from pipeline.compose.composite import (BackgroundJob, CompositeJob, FileBackground, FileForeground, FileTrimap,
                                   ForegroundJob, SeededTrimap, run_job, run_jobs)
from pipeline.core.manifest import SUMMARY_NAME, count_by, file_record, write_manifest
from pipeline.compose.synthetic import SyntheticForeground
from pipeline.core.io import atomic_dir, write_json, write_text
from pipeline.compose.params import Comp1kParams, ComposeParams, D646Params
from pipeline.core.params import as_dict

logger = logging.getLogger(__name__)
# Stream ids inside the seed tuple (seed, stream, index, ...) so that no two random draws share a stream.
_TRAIN_FG, _VAL_FG, _TEST_FG, _TRAIN_BG, _VAL_BG, _TEST_BG, _VAL_TRI, _TEST_TRI, _SPLIT = range(9)


def default_workers() -> int:
    """At most two processes: the project's CPU budget is two cores."""
    return max(1, min(2, os.cpu_count() or 1))


# ------------------------------------------------------------------------------------------ synthetic
def synthetic_jobs(cfg: ComposeParams, seed: int) -> tuple[list, dict[str, list[str]]]:
    """Jobs and list files of the procedural set (sizes from the compose params)."""
    size, n_train, n_val, n_test = cfg.size, cfg.n_train_fg, cfg.n_val, cfg.n_test
    n_train_bg = max(8, n_train) if cfg.n_train_bg is None else cfg.n_train_bg
    n_bg_val, n_bg_test = cfg.n_bg_val, cfg.n_bg_test
    jobs: list = []
    lists: dict[str, list[str]] = {"train/fg_list.txt": [], "train/bg_list.txt": [], "val/list.txt": [],
                                   "test/list.txt": []}
    for i in range(n_train):
        name = f"syn_train_{i:04d}"
        jobs.append(ForegroundJob("train", name, SyntheticForeground((seed, _TRAIN_FG, i), size)))
        lists["train/fg_list.txt"].append(name)
    for j in range(n_train_bg):
        name = f"bg_{j:04d}"
        jobs.append(BackgroundJob("train", name, PhotoBackground("train", (seed, _TRAIN_BG, j), (size, size))))
        lists["train/bg_list.txt"].append(f"bg/{name}.png")
    for split, n_fg, n_bg, streams in (("val", n_val, n_bg_val, (_VAL_FG, _VAL_BG, _VAL_TRI)),
                                       ("test", n_test, n_bg_test, (_TEST_FG, _TEST_BG, _TEST_TRI))):
        for i in range(n_fg):
            fg = SyntheticForeground((seed, streams[0], i), size)
            for k in range(n_bg):
                name = f"syn_{split}_{i:04d}_{k}"
                jobs.append(CompositeJob(split, name, fg, PhotoBackground(split, (seed, streams[1], i, k), (size, size)),
                                         SeededTrimap((seed, streams[2], i, k))))
                lists[f"{split}/list.txt"].append(name)
    return jobs, lists


# ------------------------------------------------------------------------------------------ real sources
def resolve_layout(cfg: ComposeParams, seed: int) -> layouts.RealLayout:
    """The RealLayout of `compose.source` from its sub-section (`compose.comp1k`, `compose.d646`, ...)."""
    sub = cfg.real_source()
    if isinstance(sub, Comp1kParams):
        return layouts.comp1k_layout(sub.root, sub.coco_dir, sub.voc_dir, sub.train_dir, sub.test_dir)
    if isinstance(sub, D646Params):
        return layouts.d646_layout(sub.root, sub.bg_train_dir, sub.bg_test_dir)
    root = Path(sub.root)
    stems = sorted(p.stem for p in layouts.image_files(root / "fg"))
    rng = np.random.default_rng([seed, _SPLIT])
    n_test = min(cfg.n_test, max(0, len(stems) - 1))
    test_names = sorted(rng.choice(stems, size=n_test, replace=False).tolist()) if n_test else []
    return layouts.folder_layout(root, sub.bg_dir, sub.bg_test_dir, test_names)


def _bgs_of(bgs: list[Path], index: int, n_bg: int, strict: bool, what: str) -> list[Path]:
    start = index * n_bg
    if strict and start + n_bg > len(bgs):
        raise ValueError(f"{what}: background list has {len(bgs)} entries, foreground {index} needs "
                         f"{start + n_bg} ({n_bg} per foreground, consumed in order)")
    return [bgs[(start + k) % len(bgs)] for k in range(n_bg)]


def real_jobs(cfg: ComposeParams, seed: int, layout: layouts.RealLayout) -> tuple[list, dict[str, list[str]]]:
    """Jobs and list files of a real source: Adobe composition for val/test, fg/alpha copies for train."""
    source = layout.source
    sub = cfg.real_source()
    strict = source == "comp1k"
    n_bg_train = sub.n_bg_train if sub.n_bg_train is not None else (100 if strict else 1)
    n_bg_test = sub.n_bg_test if sub.n_bg_test is not None else (20 if source != "folder" else 1)
    n_bg_val = sub.n_bg_val if sub.n_bg_val is not None else min(2, n_bg_train)
    write_test_fg_bg = sub.write_test_fg_bg if sub.write_test_fg_bg is not None else source != "comp1k"
    n_val = sub.n_val if sub.n_val is not None else (0 if source == "comp1k" else cfg.n_val)
    if source == "comp1k" and n_val:
        logger.warning("compose.comp1k.n_val = %d: %d training foregrounds are held out for validation, which "
                       "departs from the published protocol (all 431 train)", n_val, n_val)
    n_val = min(n_val, max(0, len(layout.train) - 1))
    rng = np.random.default_rng([seed, _SPLIT, 1])
    val_ids = set(rng.choice(len(layout.train), size=n_val, replace=False).tolist()) if n_val else set()
    train_ids = [i for i in range(len(layout.train)) if i not in val_ids]
    if sub.max_train_fg is not None:
        train_ids = train_ids[:sub.max_train_fg]
    test_ids = list(range(len(layout.test)))
    if sub.max_test_fg is not None:
        test_ids = test_ids[:sub.max_test_fg]
    bg_where = "training background list"
    jobs: list = []
    lists: dict[str, list[str]] = {"train/fg_list.txt": [], "train/bg_list.txt": [], "val/list.txt": [],
                                   "test/list.txt": []}

    def foreground(item: layouts.ForegroundItem, check_trimap: bool = False) -> FileForeground:
        return FileForeground(item.fg, item.alpha, layout.label(item.fg), layout.label(item.alpha),
                              item.trimap if check_trimap else None)

    seen: set[Path] = set()
    for i in train_ids:
        item = layout.train[i]   # its trimap (if the source has one) is unused by training but still checked
        jobs.append(ForegroundJob("train", item.name, foreground(item, check_trimap=True)))
        lists["train/fg_list.txt"].append(item.name)
        for bg in _bgs_of(layout.train_bgs, i, n_bg_train, strict, bg_where):
            if bg not in seen:
                seen.add(bg)
                lists["train/bg_list.txt"].append(str(bg.resolve()))
    for i in sorted(val_ids):
        item = layout.train[i]
        for k, bg in enumerate(_bgs_of(layout.train_bgs, i, n_bg_val, strict, bg_where)):
            trimap = FileTrimap(item.trimap, layout.label(item.trimap)) if item.trimap else \
                SeededTrimap((seed, _VAL_TRI, i, k))
            jobs.append(CompositeJob("val", f"{item.name}_{k}", foreground(item),
                                     FileBackground(bg, layout.label(bg)), trimap))
            lists["val/list.txt"].append(f"{item.name}_{k}")
    for j in test_ids:
        item = layout.test[j]
        for k, bg in enumerate(_bgs_of(layout.test_bgs, j, n_bg_test, strict, "test background list")):
            name = f"{item.name}_{k}"
            if layout.test_trimap_dir is not None:     # official trimaps, looked up by the composite's name
                path = layout.test_trimap_dir / f"{name}.png"
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: official test trimap for composite '{name}' not found")
                trimap = FileTrimap(path, layout.label(path))
            elif item.trimap is not None:
                trimap = FileTrimap(item.trimap, layout.label(item.trimap))
            else:
                trimap = SeededTrimap((seed, _TEST_TRI, j, k))
            jobs.append(CompositeJob("test", name, foreground(item), FileBackground(bg, layout.label(bg)),
                                     trimap, write_fg_bg=write_test_fg_bg))
            lists["test/list.txt"].append(name)
    return jobs, lists


# ------------------------------------------------------------------------------------------ entry point
def build_composed_set(cfg: ComposeParams, seed: int, out_dir: str | Path, workers: int | None = None
                       ) -> dict[str, Any]:
    """Compose the set described by the compose params into `out_dir`; return the summary.

    Everything is written into a temporary sibling folder and renamed into place only on success.
    """
    source = cfg.source
    workers = workers or cfg.workers or default_workers()
    jobs, lists = synthetic_jobs(cfg, seed) if source == "synthetic" else \
        real_jobs(cfg, seed, resolve_layout(cfg, seed))
    names = [f"{j.split}/{j.name}" for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"compose: two outputs share a name in source '{source}' (file stems must be unique)")
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        records = run_jobs(run_job, jobs, tmp, workers)
        for rel, lines in lists.items():
            path = write_text(tmp / rel, "".join(f"{line}\n" for line in lines))
            records.append(file_record(tmp, path, rel.split("/")[0], "list", []))
        _, digest = write_manifest(tmp, records)
        summary = {"source": source, "set_hash": digest, "n_files": len(records),
                   "bytes": int(sum((tmp / r["path"]).stat().st_size for r in records)),
                   "counts": count_by(records, "split", "kind"),
                   "samples": {rel.split("/")[0] + ("_bg" if "bg_list" in rel else ""): len(lines)
                               for rel, lines in lists.items()},
                   "params": {"seed": seed, **as_dict(cfg)}}
        write_json(tmp / SUMMARY_NAME, summary)
    logger.info("composed %d files (%s) into %s, set_hash %s", len(records), source, out_dir, digest[:12])
    return summary
