"""Evaluate a matting model on whole sets: predict, save, score, summarise; no image is silently dropped.

Per image: read and validate (image, alpha, trimap), predict at full resolution (`inference.predict_alpha`),
save the uint8 prediction as `<pred_dir>/<name>.png`, score it with the MATLAB-semantics metrics. A failure
stops the run with the set, the image name and the error, unless `continue_on_error` is set: then it is
counted and listed. Either way evaluated + failed must equal the number of listed images (checked).
"""
from __future__ import annotations

import csv
import io
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from models.matting.inputs import NETWORK_STRIDE
from pipeline.matting.eval_sets import DEFAULT_SET, EvalSet, find_missing, list_names, load_sample
from pipeline.matting.inference import predict_alpha
from pipeline.matting.memory import PeakMemory
from pipeline.core.io import write_image, write_json, write_text
from pipeline.matting.metrics import METRIC_NAMES, compute_matting_metrics

logger = logging.getLogger(__name__)

ModelFn = Callable[[torch.Tensor], torch.Tensor]
#: What the `trivial` entry of a set's summary scores (see `trivial_prediction`).
TRIVIAL = "trimap only: unknown region predicted as background (alpha 0)"
CSV_COLUMNS = ("set", "name", *METRIC_NAMES, "peak_mem_mb", "seconds")
#: Errors one image may raise (unreadable files, bad trimaps, shape errors, out of memory) that
#: `continue_on_error` turns into a counted failure. Anything else always stops the run.
IMAGE_ERRORS = (ValueError, RuntimeError, OSError, MemoryError)


class EvaluationError(RuntimeError):
    """An image failed (or the image count does not add up); the message names the set and the image."""


@dataclass
class ImageResult:
    """One evaluated image: the four errors, the peak memory of its inference (MiB) and its inference time (s)."""

    set: str
    name: str
    sad: float
    mse: float
    grad: float
    conn: float
    peak_mem_mb: float
    seconds: float


@dataclass
class SetResult:
    """All images of one set: results, failures ({'name', 'error'}) and the number of listed images."""

    name: str
    n_listed: int
    images: list[ImageResult] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    memory_method: str = ""
    trivial: list[dict[str, float]] = field(default_factory=list)

    def check_count(self) -> None:
        """Raise EvaluationError unless evaluated + failed == listed."""
        if len(self.images) + len(self.failures) != self.n_listed:
            raise EvaluationError(f"set '{self.name}': {len(self.images)} evaluated + {len(self.failures)} failed "
                                  f"!= {self.n_listed} listed images")

    def summary(self) -> dict[str, Any]:
        """Mean and (population) std of each metric, the counts and the failures; means are None if none ran."""
        out: dict[str, Any] = {"n_images": len(self.images), "n_failed": len(self.failures),
                               "n_listed": self.n_listed, "failures": list(self.failures)}
        for metric in METRIC_NAMES:
            values = np.array([getattr(r, metric) for r in self.images], dtype=np.float64)
            out[metric] = {"mean": float(values.mean()) if values.size else None,
                           "std": float(values.std()) if values.size else None}
        peaks = [r.peak_mem_mb for r in self.images]
        out["peak_mem_mb_max"] = max(peaks) if peaks else None
        if self.trivial:
            out["trivial"] = {"what": TRIVIAL, **{m: float(np.mean([t[m] for t in self.trivial]))
                                                  for m in METRIC_NAMES}}
        out["memory_method"] = self.memory_method
        return out


def evaluate_set(model_fn: ModelFn, eval_set: EvalSet, pred_dir: Path | None, *, stride: int = NETWORK_STRIDE,
                 tile: int | None = None, overlap: int | None = None, device: str | torch.device = "cpu",
                 continue_on_error: bool = False, progress: bool = True) -> SetResult:
    """Evaluate every listed image of `eval_set`; predictions go to `pred_dir/<name>.png` (None: not saved).

    Raises EvaluationError naming the set and image on the first failure unless `continue_on_error`.
    """
    names = list_names(eval_set)
    index = eval_set.index()  # one listing per folder, the validator's rules (any accepted extension and case)
    if not continue_on_error:
        missing = find_missing(eval_set, names, index)
        if missing:
            listing = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            raise EvaluationError(f"set '{eval_set.name}': {len(missing)} of the files of {len(names)} listed "
                                  f"images are missing: {listing}")
    result = SetResult(eval_set.name, len(names))
    # a progress bar only on a terminal: in a log file its carriage returns make one unreadable line
    for name in tqdm(names, desc=f"evaluate {eval_set.name}", unit="img",
                     disable=not progress or not sys.stderr.isatty()):
        try:
            result.images.append(_evaluate_image(model_fn, eval_set, name, pred_dir, result, index, stride=stride,
                                                 tile=tile, overlap=overlap, device=device))
        except IMAGE_ERRORS as err:
            message = f"{type(err).__name__}: {err}"
            if not continue_on_error:
                raise EvaluationError(f"set '{eval_set.name}', image '{name}' failed: {message}") from err
            logger.warning("set '%s', image '%s' failed (counted, continue_on_error): %s", eval_set.name, name,
                           message)
            result.failures.append({"name": name, "error": message})
    result.check_count()
    return result


def _evaluate_image(model_fn: ModelFn, eval_set: EvalSet, name: str, pred_dir: Path | None, result: SetResult,
                    index: dict[str, dict[str, Path]], **predict_kwargs: Any) -> ImageResult:
    image, alpha, trimap = load_sample(eval_set, name, index)
    with PeakMemory(predict_kwargs["device"]) as memory:
        start = time.perf_counter()
        pred = predict_alpha(model_fn, image, trimap, **predict_kwargs)
        seconds = time.perf_counter() - start
    result.memory_method = memory.method
    if pred_dir is not None:
        write_image(Path(pred_dir) / f"{name}.png", pred)
    metrics = compute_matting_metrics(pred, alpha, trimap)
    result.trivial.append(compute_matting_metrics(trivial_prediction(trimap), alpha, trimap))
    return ImageResult(eval_set.name, name, **metrics, peak_mem_mb=round(memory.peak_mb, 1),
                       seconds=round(seconds, 4))


def trivial_prediction(trimap: np.ndarray) -> np.ndarray:
    """The trimap alone as a matte: 255 where it says foreground, 0 elsewhere (the unknown region as background).

    A model that has learnt nothing scores about this; the report shows it beside every trained variant.
    """
    return np.where(trimap == 255, 255, 0).astype(np.uint8)


def metrics_document(set_results: Iterable[SetResult], **extra: Any) -> dict[str, Any]:
    """summary.json content: per set summaries, and the default set's means and counts at the top level."""
    sets = {r.name: r.summary() for r in set_results}
    doc: dict[str, Any] = {"sets": sets, **extra}
    default = sets.get(DEFAULT_SET) or next(iter(sets.values()), None)
    if default is not None:
        for metric in METRIC_NAMES:
            doc[metric] = default[metric]["mean"]
        doc["n_images"], doc["n_failed"] = default["n_images"], default["n_failed"]
    return doc


def dvc_metrics(doc: dict[str, Any]) -> dict[str, Any]:
    """metrics.json content (a DVC metric): the default set's mean SAD/MSE/Grad/Conn at the top level and each
    further set's under its name, e.g. {"sad": 5.03, "mse": 0.148, "grad": 6.27, "conn": 5.09,
    "alphamatting": {"sad": ...}}. Nothing else (counts, std, settings) so `dvc metrics show/diff` and
    `dvc exp show` list only what is compared across runs; the rest is in summary.json."""
    out: dict[str, Any] = {}
    for name, summary in doc.get("sets", {}).items():
        values = {m: summary[m]["mean"] for m in METRIC_NAMES if summary.get(m, {}).get("mean") is not None}
        if name == DEFAULT_SET:
            out = {**values, **out}
        elif values:
            out[name] = values
    return out


def write_documents(out_dir: str | Path, doc: dict[str, Any]) -> None:
    """Write summary.json (everything) and metrics.json (`dvc_metrics`) into `out_dir`."""
    write_json(Path(out_dir) / "summary.json", doc)
    write_json(Path(out_dir) / "metrics.json", dvc_metrics(doc))


def per_image_csv(set_results: Iterable[SetResult]) -> str:
    """per_image.csv content: one row per evaluated image, columns CSV_COLUMNS (metrics at full precision)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for set_result in set_results:
        for row in set_result.images:
            writer.writerow({k: (repr(v) if isinstance(v, float) and math.isfinite(v) else v)
                             for k, v in asdict(row).items()})
    return buffer.getvalue()


def run_evaluation(model_fn: ModelFn, eval_sets: list[EvalSet], out_dir: str | Path, *,
                   stride: int = NETWORK_STRIDE, tile: int | None = None, overlap: int | None = None,
                   device: str | torch.device = "cpu", continue_on_error: bool = False, progress: bool = True,
                   **extra: Any) -> dict[str, Any]:
    """Evaluate every set into `out_dir` (pred/<set>/<name>.png, per_image.csv, summary.json, metrics.json);
    returns the summary.

    `extra` is stored in summary.json as is (e.g. the checkpoint and the tile setting).
    """
    out_dir = Path(out_dir)
    results = []
    for eval_set in eval_sets:
        results.append(evaluate_set(model_fn, eval_set, out_dir / "pred" / eval_set.name, stride=stride, tile=tile,
                                    overlap=overlap, device=device, continue_on_error=continue_on_error,
                                    progress=progress))
        summary = results[-1].summary()
        means = "  ".join(f"{m.upper() if m in ('sad', 'mse') else m.capitalize()} {summary[m]['mean']:.4g}"
                          for m in METRIC_NAMES if summary[m]["mean"] is not None)
        logger.info("set '%s': %s over %d images (%d failed)", eval_set.name, means or "no metrics",
                    summary["n_images"], summary["n_failed"])
    doc = metrics_document(results, tile=tile, overlap=overlap, stride=stride, **extra)
    write_text(out_dir / "per_image.csv", per_image_csv(results))
    write_documents(out_dir, doc)
    return doc


def tiled_effect(model_fn: ModelFn, eval_set: EvalSet, whole: dict[str, Any], *, tile: int, overlap: int,
                 stride: int = NETWORK_STRIDE, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Re-evaluate `eval_set` with tiled inference and compare with the whole-image summary `whole`.

    Returns the tiled means, their differences from the whole-image means (tiled − whole) and both peak
    memories, so the report can state what tiling costs in accuracy and saves in memory on this test set.
    """
    tiled = evaluate_set(model_fn, eval_set, None, stride=stride, tile=tile, overlap=overlap, device=device,
                         progress=False)
    tiled.check_count()
    summary = tiled.summary()
    out: dict[str, Any] = {"set": eval_set.name, "tile": tile, "overlap": overlap, "n_images": summary["n_images"],
                           "peak_mem_mb_max": {"whole": whole.get("peak_mem_mb_max"),
                                               "tiled": summary.get("peak_mem_mb_max")}}
    for metric in METRIC_NAMES:
        tiled_mean, whole_mean = summary[metric]["mean"], (whole.get(metric) or {}).get("mean")
        out[metric] = {"tiled": tiled_mean, "whole": whole_mean,
                       "delta": None if tiled_mean is None or whole_mean is None else tiled_mean - whole_mean}
    return out
