"""Composition exactly as Adobe's Composition_code.py, and the parallel runner of composition jobs.

The reference rule (checked against Adobe's script and mmagic's preprocess_comp1k_dataset.py):
  1. ratio = max(fw / bw, fh / bh) in true division; only if ratio > 1 the background is resized with PIL
     bicubic to (ceil(bw·ratio), ceil(bh·ratio)) — never shrunk;
  2. it is cropped from the top-left corner to the foreground size (PIL crop (0, 0, fw, fh));
  3. I = α·F + (1 − α)·B with α = a / 255 in float64 (Python floats in the reference), TRUNCATED to uint8
     (the reference calls int() per pixel, mmagic astype(np.uint8); identical for non-negative values).
OpenCV INTER_CUBIC (a = −0.75) differs from PIL BICUBIC (a = −0.5), so PIL is used, as both references do
(images are decoded by PIL too, through pipeline.core.io, the reading path of every stage).

A `CompositeJob` names a foreground source, a background source and a trimap source; `run_composite_job`
writes image/alpha/trimap (and fg/bg when asked) of one composite and returns its manifest records.
`run_jobs` maps a job function over jobs, in a process pool when workers > 1, keeping the job order.
"""
from __future__ import annotations

import functools
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence, TypeVar

import cv2
import numpy as np
from PIL import Image

from pipeline.core.manifest import file_record
from pipeline.core.io import ImageError, check_same_size, pil_rgb, read_alpha, read_rgb, read_trimap, write_image

T = TypeVar("T")
R = TypeVar("R")


# ------------------------------------------------------------------------------------------ Adobe's rule
def adobe_background(bg: Image.Image, width: int, height: int) -> np.ndarray:
    """Resize `bg` (PIL RGB) bicubically only when smaller than width×height, crop top-left; H×W×3 uint8."""
    bw, bh = bg.size
    ratio = max(width / bw, height / bh)
    if ratio > 1:
        bg = bg.resize((math.ceil(bw * ratio), math.ceil(bh * ratio)), Image.BICUBIC)
    return np.asarray(bg.crop((0, 0, width, height)), dtype=np.uint8).copy()


def composite_truncate(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """I = α·F + (1−α)·B in float64 with α = alpha/255, truncated (not rounded) to uint8.

    fg, bg: H×W×3 uint8; alpha: H×W uint8. Returns H×W×3 uint8.
    """
    check_same_size({"fg": fg, "bg": bg, "alpha": alpha}, "composite")
    a = alpha.astype(np.float64)[..., None] / 255.0
    return (a * fg + (1.0 - a) * bg).astype(np.uint8)


def adobe_composite(fg: np.ndarray, alpha: np.ndarray, bg: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Composite fg/alpha over a PIL background by Adobe's rule; returns (image, cropped background)."""
    h, w = alpha.shape
    background = adobe_background(bg, w, h)
    return composite_truncate(fg, background, alpha), background


# ------------------------------------------------------------------------------------------ sources
class ForegroundSource(Protocol):
    def load(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(fg H×W×3 uint8, alpha H×W uint8, source labels)."""


class BackgroundSource(Protocol):
    def load(self) -> tuple[Image.Image, list[str]]:
        """(PIL RGB image, source labels)."""


class TrimapSource(Protocol):
    def load(self, alpha: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(trimap H×W uint8 in {0,128,255}, source labels)."""


@dataclass(frozen=True)
class FileForeground:
    """A foreground and its alpha on disk (read with PIL, validated, sizes checked).

    `trimap_path`, when given, is a trimap that comes with the foreground but is not written (a training item
    of a `folder` source): it is still read and checked (0/128/255, size), so no trimap of the source goes
    unchecked.
    """
    fg_path: Path
    alpha_path: Path
    fg_label: str
    alpha_label: str
    trimap_path: Path | None = None

    def load(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        fg = read_rgb(self.fg_path)
        alpha = read_alpha(self.alpha_path)
        arrays = {str(self.fg_path): fg, str(self.alpha_path): alpha}
        if self.trimap_path is not None:
            arrays[str(self.trimap_path)] = read_trimap(self.trimap_path)
        check_same_size(arrays, f"foreground {self.fg_path}")
        return fg, alpha, [self.fg_label, self.alpha_label]


@dataclass(frozen=True)
class FileBackground:
    """A background photograph on disk (PIL, converted to RGB as the reference does)."""
    path: Path
    label: str

    def load(self) -> tuple[Image.Image, list[str]]:
        return pil_rgb(self.path), [self.label]


@dataclass(frozen=True)
class FileTrimap:
    """A stored trimap (e.g. Adobe's official test trimaps): read, value-checked, size-checked."""
    path: Path
    label: str

    def load(self, alpha: np.ndarray) -> tuple[np.ndarray, list[str]]:
        trimap = read_trimap(self.path)
        if trimap.shape != alpha.shape:
            raise ImageError(f"{self.path}: trimap is {trimap.shape[1]}x{trimap.shape[0]} but the alpha is "
                             f"{alpha.shape[1]}x{alpha.shape[0]}")
        return trimap, [self.label]


@dataclass(frozen=True)
class SeededTrimap:
    """A fixed trimap generated from the alpha with a seeded generator (pipeline.core.trimap.fixed_trimap)."""
    seed: tuple[int, ...]
    kernel_range: tuple[int, int] = (1, 29)

    def load(self, alpha: np.ndarray) -> tuple[np.ndarray, list[str]]:
        from pipeline.core.trimap import fixed_trimap

        seed_text = "-".join(str(s) for s in self.seed)
        return fixed_trimap(alpha, list(self.seed), self.kernel_range), [f"trimap:seeded:{seed_text}"]


# ------------------------------------------------------------------------------------------ jobs
@dataclass(frozen=True)
class CompositeJob:
    """One composite `split/<kind>/<name>.png`; fg/bg folders are written only when `write_fg_bg`."""
    split: str
    name: str
    foreground: Any
    background: Any
    trimap: Any
    write_fg_bg: bool = True


@dataclass(frozen=True)
class ForegroundJob:
    """One training foreground copied (re-encoded as PNG) to `train/fg/<name>.png` and `train/alpha/`."""
    split: str
    name: str
    foreground: Any


@dataclass(frozen=True)
class BackgroundJob:
    """One training background written to `<split>/bg/<name>.png` (synthetic source)."""
    split: str
    name: str
    background: Any


def _write(root: Path, split: str, kind: str, name: str, image: np.ndarray, sources: list[str]) -> dict:
    path = root / split / kind / f"{name}.png"
    write_image(path, image)
    return file_record(root, path, split, kind, sources)


def run_composite_job(job: CompositeJob, root: Path) -> list[dict[str, Any]]:
    """Composite one sample and write its files under `root/<split>/`; returns their manifest records."""
    fg, alpha, fg_sources = job.foreground.load()
    bg_image, bg_sources = job.background.load()
    image, background = adobe_composite(fg, alpha, bg_image)
    trimap, trimap_sources = job.trimap.load(alpha)
    records = [_write(root, job.split, "image", job.name, image, fg_sources + bg_sources),
               _write(root, job.split, "alpha", job.name, alpha, fg_sources[1:] or fg_sources),
               _write(root, job.split, "trimap", job.name, trimap, trimap_sources)]
    if job.write_fg_bg:
        records.append(_write(root, job.split, "fg", job.name, fg, fg_sources[:1]))
        records.append(_write(root, job.split, "bg", job.name, background, bg_sources))
    return records


def run_foreground_job(job: ForegroundJob, root: Path) -> list[dict[str, Any]]:
    """Write one training foreground and alpha; returns their manifest records."""
    fg, alpha, sources = job.foreground.load()
    return [_write(root, job.split, "fg", job.name, fg, sources[:1]),
            _write(root, job.split, "alpha", job.name, alpha, sources[1:] or sources)]


def run_background_job(job: BackgroundJob, root: Path) -> list[dict[str, Any]]:
    """Write one background image as PNG; returns its manifest record."""
    image, sources = job.background.load()
    return [_write(root, job.split, "bg", job.name, np.asarray(image, dtype=np.uint8), sources)]


def run_job(job: CompositeJob | ForegroundJob | BackgroundJob, root: Path) -> list[dict[str, Any]]:
    """Dispatch any job to its writer (lets one pool balance mixed jobs)."""
    if isinstance(job, CompositeJob):
        return run_composite_job(job, root)
    if isinstance(job, ForegroundJob):
        return run_foreground_job(job, root)
    if isinstance(job, BackgroundJob):
        return run_background_job(job, root)
    raise TypeError(f"unknown job type {type(job).__name__}")


# ------------------------------------------------------------------------------------------ runner
def _init_worker() -> None:
    cv2.setNumThreads(1)


def run_jobs(function: Callable[[T, Path], list[R]], jobs: Sequence[T], root: Path,
             workers: int = 1) -> list[R]:
    """Apply `function(job, root)` to every job and concatenate the results in job order.

    With workers > 1 a pool of freshly spawned processes is used (a forked child can deadlock in a thread pool
    that OpenCV or torch started in the parent); `imap` keeps the order of the inputs, so the output is the
    same as the serial run's.
    """
    bound = functools.partial(function, root=root)
    if workers <= 1 or len(jobs) <= 1:
        return [r for job in jobs for r in bound(job)]
    context = multiprocessing.get_context("spawn")
    chunk = max(1, len(jobs) // (workers * 4))
    with context.Pool(processes=workers, initializer=_init_worker) as pool:
        results: Iterable[list[R]] = pool.imap(bound, jobs, chunksize=chunk)
        return [r for part in results for r in part]
