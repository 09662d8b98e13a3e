"""Matting results over training seeds: one evaluation per seed, one summary per variant.

Each variant is trained once per seed of `train.seeds` (`results/train/<variant>/seed<s>/`); the evaluate stage
scores each seed's checkpoint on the same test images (`results/eval/<variant>/seeds/seed<s>/summary.json`) and
`aggregate_seeds` folds them into `results/eval/<variant>/summary.json`:

    {"variant", "seeds": [0, 1, 2],
     "per_seed": {"0": {"sad", "mse", "grad", "conn", "checkpoint"}, ...},     # test-split means per seed
     "sets": {<set>: {<metric>: {"mean", "std", "values"}, "n_images", "trivial", ...}},  # over seeds
     "sad", "mse", "grad", "conn",                                               # test means over seeds
     "checkpoint": {"which", "iters"}, "tiled_check": {<metric>: {"delta", ...}} (mean over seeds), ...}

A seed's number is the mean over the test images of that seed's predictions; `std` is the sample standard
deviation over seeds (training noise), not over images. Variants trained with the same seeds are compared seed
by seed (`paired_to`), the test images fixed: the interval describes training noise, not image sampling.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipeline.core.stats import mean_std, paired_difference

METRICS = ("sad", "mse", "grad", "conn")


def seed_dir_name(seed: int) -> str:
    """'seed<s>': the folder of one seed's training (results/train/<v>/) and evaluation (results/eval/<v>/seeds/)."""
    return f"seed{int(seed)}"


def _mean_numbers(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean over docs of every numeric leaf present in all of them (nested dicts followed, others from docs[0])."""
    out: dict[str, Any] = {}
    for key, first in docs[0].items():
        values = [d.get(key) for d in docs]
        if isinstance(first, bool) or first is None:
            out[key] = first
        elif isinstance(first, (int, float)) and all(isinstance(v, (int, float)) for v in values):
            out[key] = float(np.mean(values))
        elif isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            out[key] = _mean_numbers(values)
        else:
            out[key] = first
    return out


def aggregate_seeds(docs: Mapping[int, Mapping[str, Any]], variant: str) -> dict[str, Any]:
    """The variant summary from one evaluation summary per seed ({seed: per-seed summary.json})."""
    if not docs:
        raise ValueError(f"{variant}: no per-seed evaluation to aggregate")
    seeds = sorted(docs)
    ordered = [docs[s] for s in seeds]
    sets: dict[str, Any] = {}
    for name, first in ordered[0]["sets"].items():
        per = [d["sets"][name] for d in ordered]
        entry: dict[str, Any] = {key: value for key, value in first.items() if key not in METRICS}
        entry["n_failed"] = sum(int(p.get("n_failed", 0)) for p in per)
        entry["failures"] = [f for p in per for f in p.get("failures", [])]
        for metric in METRICS:
            if metric in first:
                values = [float(p[metric]["mean"]) for p in per]
                entry[metric] = {**mean_std(values), "values": values}
        sets[name] = entry
    test = next(iter(ordered[0]["sets"]))
    checkpoints = [d.get("checkpoint") or {} for d in ordered]
    whiches = sorted({str(c.get("which")) for c in checkpoints})
    summary: dict[str, Any] = {
        "variant": variant, "seeds": seeds,
        "per_seed": {str(s): {**{m: float(docs[s]["sets"][test][m]["mean"]) for m in METRICS
                                 if m in docs[s]["sets"][test]},
                              "checkpoint": docs[s].get("checkpoint")} for s in seeds},
        "sets": sets,
        **{m: sets[test][m]["mean"] for m in METRICS if m in sets[test]},
        "n_images": ordered[0].get("n_images"), "n_failed": sum(int(d.get("n_failed", 0)) for d in ordered),
        "checkpoint": {"which": whiches[0] if len(whiches) == 1 else "mixed",
                       "iters": [c.get("iter") for c in checkpoints],
                       "requested": checkpoints[0].get("requested"),
                       "selected_by": checkpoints[0].get("selected_by")},
        "std_over": "training seeds (each seed's value is the mean over the test images)",
    }
    for key in ("stride", "tile", "overlap"):
        if key in ordered[0]:
            summary[key] = ordered[0][key]
    tiled = [d["tiled_check"] for d in ordered if d.get("tiled_check")]
    if len(tiled) == len(ordered):
        summary["tiled_check"] = _mean_numbers(tiled)
    return summary


def paired_to(summary: Mapping[str, Any], baseline: Mapping[str, Any], metric: str = "sad",
              confidence: float = 0.95) -> dict[str, Any] | None:
    """`metric` of `summary` minus the baseline's, paired by seed over the seeds both have (None: fewer than one)."""
    seeds = [s for s in summary.get("per_seed", {}) if s in baseline.get("per_seed", {})]
    seeds = [s for s in seeds if metric in summary["per_seed"][s] and metric in baseline["per_seed"][s]]
    if not seeds:
        return None
    ours = [summary["per_seed"][s][metric] for s in seeds]
    theirs = [baseline["per_seed"][s][metric] for s in seeds]
    return {"seeds": [int(s) for s in seeds], **paired_difference(ours, theirs, confidence)}


def seed_folders(root: Path, seeds: Sequence[int]) -> list[Path]:
    """`root/seed<s>` for each seed; FileNotFoundError naming the first missing one (never a silent subset)."""
    folders = [Path(root) / seed_dir_name(s) for s in seeds]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no training output for this seed (params.yaml train.seeds "
                                f"{list(seeds)}; run `dvc repro` to train it)")
    return folders
