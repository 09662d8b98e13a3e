"""One MMEngine Runner run per (dataset, operator, seed) of the toy track, and the seed aggregation.

`build_run_config` merges the per-run knobs (IDX files, operator, seed, budget) into the layered config
`configs/toy/recover-net_1xb100-100e_toy.py`; `run_toy` trains (resuming an interrupted run from its last
checkpoint), evaluates the last and the best-by-validation-PSNR checkpoints on the test split, stores the
reconstructions of a fixed set of test images for the grid figure, and writes `result.json` into the run's
work_dir. A work_dir is keyed by a fingerprint of the merged config and the toy code, so a finished run is
reused and a stale one is started afresh. `aggregate_seeds` gives mean ± std (sample std; 0 for one seed).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import models  # noqa: F401  (registers the operator pairs)
import models.toy  # noqa: F401  (registers ToyReconstructionNet)
from models.registry import OPERATOR_PAIRS
from pipeline.data.toy_datasets import (DEFAULT_CACHE, DatasetNotFoundError, ToyReconstructionDataset,
                                         resolve_idx_dir)
from pipeline.engine.compat import allow_mmengine_checkpoint_globals
from pipeline.io import write_json
from pipeline.metrics.reconstruction import METRIC_NAMES
from pipeline.params import ParamsError, require

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs/toy/recover-net_1xb100-100e_toy.py"
PROTOCOL = "ours (modelled on the authors' group harness)"
FULL_EPOCHS, FULL_MILESTONES = 100, (50, 70, 85)
GRID_IMAGES = 8
#: Sources whose content defines a run's result (a change invalidates finished runs).
CODE_FILES = ("models/**/*.py", "pipeline/data/idx.py", "pipeline/data/toy_datasets.py",
              "pipeline/metrics/reconstruction.py", "pipeline/engine/toy_runner.py", "configs/toy/**/*.py")
_RUN_COUNTER = itertools.count()


def scaled_milestones(epochs: int) -> list[int]:
    """The protocol's lr milestones (50/70/85 of 100 epochs) scaled to `epochs`, deduplicated, in [1, epochs)."""
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    scaled = {int(m * epochs / FULL_EPOCHS) for m in FULL_MILESTONES}
    return sorted(m for m in scaled if 1 <= m < epochs)


def grid_indices(n_test: int, count: int = GRID_IMAGES) -> list[int]:
    """A fixed, evenly spread set of `count` test-split positions (the same for every operator and seed)."""
    return sorted({int(i) for i in np.linspace(0, n_test - 1, min(count, n_test))})


def code_fingerprint() -> str:
    """sha256 over the toy track's source files (see CODE_FILES)."""
    digest = hashlib.sha256()
    for pattern in CODE_FILES:
        for path in sorted(REPO_ROOT.glob(pattern)):
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + path.read_bytes())
    return digest.hexdigest()


def build_run_config(*, dataset_files: dict[str, Path], operator: str, seed: int, epochs: int, batch_size: int,
                     counts: dict[str, int | None], work_dir: str | Path, dvclive: bool = True,
                     overrides: dict[str, Any] | None = None, config_file: str | Path = DEFAULT_CONFIG) -> Config:
    """The merged MMEngine config of one run.

    `counts` maps 'train' / 'val' / 'test' to a subset size or None; `overrides` are dotted config keys merged
    last (e.g. {'model.channels': (8, 16, 32)} for fast tests).
    """
    # yapf-formatting the config text (logged, dumped and stored in every checkpoint) costs seconds per call.
    cfg = Config.fromfile(str(config_file), format_python_code=False)
    files = {k: str(v) for k, v in dataset_files.items()}
    for split, loader in (("train", "train_dataloader"), ("val", "val_dataloader"), ("test", "test_dataloader")):
        cfg[loader].batch_size = batch_size
        cfg[loader].dataset.files = files
        cfg[loader].dataset.count = counts.get(split)
    cfg.train_dataloader.sampler.seed = seed
    cfg.model.operator = operator
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler = [dict(type="MultiStepLR", by_epoch=True, milestones=scaled_milestones(epochs), gamma=0.1)]
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = str(work_dir)
    if dvclive:
        cfg.visualizer.vis_backends = [dict(type="LocalVisBackend"), dict(
            type="DVCLiveVisBackend", save_dir=str(Path(work_dir) / "dvclive"), artifact_suffix=(),
            init_kwargs=dict(dvcyaml=False, save_dvc_exp=False, cache_images=False, report=None))]
        # artifact_suffix=(): otherwise every close() runs `dvc add` on the run's json/py/yaml files (~8 s each
        # and .dvc files inside a pipeline output); dvcyaml=False keeps DVCLive from rewriting dvc.yaml.
    if overrides:
        cfg.merge_from_dict(overrides)
    return cfg


def config_fingerprint(cfg: Config) -> str:
    """Identity of a run: its merged config (minus the work_dir) and the toy code."""
    text = json.dumps({k: v for k, v in cfg.to_dict().items() if k not in ("work_dir", "experiment_name")},
                      sort_keys=True, default=str)
    return hashlib.sha256((text + code_fingerprint()).encode()).hexdigest()[:16]


def _prepare_work_dir(work_dir: Path, fingerprint: str) -> dict | None:
    """Return a finished run's result, keep an interrupted run of the same fingerprint, wipe a stale one."""
    stamp = work_dir / "fingerprint.txt"
    if stamp.is_file() and stamp.read_text().strip() == fingerprint:
        result_file = work_dir / "result.json"
        return json.loads(result_file.read_text()) if result_file.is_file() else None
    if work_dir.exists():
        logger.info("%s: config or code changed since this run; starting afresh", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    stamp.write_text(fingerprint + "\n")
    return None


def _trusted_history_buffers() -> Any:
    """Allow `getattr` while loading this run's own checkpoints (weights-only loading stays on).

    mmengine's `HistoryBuffer.__getstate__` pickles its statistics methods as `getattr(HistoryBuffer, 'min')`
    etc., which `allow_mmengine_checkpoint_globals` does not cover, so resuming fails without this.
    """
    return torch.serialization.safe_globals([getattr])


def _epoch_of(checkpoint: str | Path) -> int:
    match = re.search(r"epoch_(\d+)\.pth$", str(checkpoint))
    if match is None:
        raise ValueError(f"{checkpoint}: cannot read the epoch from the checkpoint name")
    return int(match.group(1))


def _unprefixed(metrics: dict[str, Any]) -> dict[str, float]:
    return {k.split("/")[-1]: float(v) for k, v in metrics.items() if k.split("/")[-1] in METRIC_NAMES}


def _best_checkpoint(runner: Runner) -> str:
    path = runner.message_hub.get_info("best_ckpt")
    if path is None or not Path(path).is_file():
        raise RuntimeError(f"{runner.work_dir}: the checkpoint hook recorded no best checkpoint ({path})")
    return str(path)


@torch.no_grad()
def _reconstruct_grid(runner: Runner, indices: list[int]) -> np.ndarray:
    """Clipped reconstructions (len(indices)×H×W float32) of the given test-split positions."""
    dataset = runner.test_dataloader.dataset
    images = torch.stack([dataset[i]["inputs"] for i in indices])
    model = runner.model
    model.eval()
    return model.reconstruct(images.to(next(model.parameters()).device)).clamp(0, 1)[:, 0].cpu().numpy()


def run_toy(cfg: Config, keep_checkpoints: bool = False) -> dict[str, Any]:
    """Train (or resume, or reuse) one run and evaluate its last and best checkpoints on the test split."""
    work_dir = Path(cfg.work_dir)
    fingerprint = config_fingerprint(cfg)
    finished = _prepare_work_dir(work_dir, fingerprint)
    if finished is not None:
        logger.info("%s: reusing the finished run", work_dir)
        return finished
    allow_mmengine_checkpoint_globals()
    resume = (work_dir / "last_checkpoint").is_file()
    cfg.resume = resume
    cfg.experiment_name = f"toy_{fingerprint}_{next(_RUN_COUNTER)}"
    for backend in cfg.visualizer.vis_backends:
        if backend["type"] == "DVCLiveVisBackend":
            backend["init_kwargs"]["resume"] = resume
    runner = Runner.from_cfg(cfg)
    with _trusted_history_buffers():
        runner.train()
        last = _unprefixed(runner.test())
        last["epoch"] = runner.epoch
        best_path = _best_checkpoint(runner)
        runner.load_checkpoint(best_path)
        best = _unprefixed(runner.test())
    best["epoch"] = _epoch_of(best_path)
    indices = grid_indices(len(runner.test_dataloader.dataset))
    np.save(work_dir / "grid.npy", _reconstruct_grid(runner, indices))
    result = {"operator": cfg.model.operator, "seed": cfg.randomness["seed"], "best": best, "last": last,
              "params": sum(p.numel() for p in runner.model.parameters() if p.requires_grad),
              "n_test": len(runner.test_dataloader.dataset), "grid_indices": indices, "resumed": resume,
              "fingerprint": fingerprint}
    if not keep_checkpoints:
        for checkpoint in work_dir.glob("*.pth"):
            checkpoint.unlink()
    write_json(work_dir / "result.json", result)
    return result


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def aggregate_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed results of one (dataset, operator) -> {'params', 'best': {metric: mean/std}, 'last': {...}}."""
    if not runs:
        raise ValueError("aggregate_seeds: no runs given")
    params = {r["params"] for r in runs}
    if len(params) != 1:
        raise ValueError(f"runs of one operator disagree on the parameter count: {sorted(params)}")
    out: dict[str, Any] = {"params": params.pop(), "n_test": runs[0]["n_test"]}
    for which in ("best", "last"):
        out[which] = {key: mean_std([r[which][key] for r in runs]) for key in (*METRIC_NAMES, "epoch")}
    return out


def run_track(toy: dict[str, Any], runs_dir: str | Path, *, cache_dir: str | Path = DEFAULT_CACHE,
              allow_download: bool = True, dvclive: bool = True, overrides: dict[str, Any] | None = None,
              keep_checkpoints: bool = False) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Every (dataset, operator, seed) run of the resolved `toy` params section.

    Optional `toy.config_overrides` (dotted MMEngine config keys) are merged into every run, before `overrides`.

    Returns:
        metrics: the `results/toy/metrics.json` content (protocol, budget, per dataset/operator mean ± std);
        grids: {dataset: {'input': 8×32×32, <operator>: 8×32×32}} test images and first-seed reconstructions.
    """
    datasets = require(toy, "datasets", "toy", list)
    operators = require(toy, "operators", "toy", list)
    seeds = require(toy, "seeds", "toy", list)
    epochs, batch_size = require(toy, "epochs", "toy", int), require(toy, "batch_size", "toy", int)
    counts = {"train": toy.get("subset"), "val": toy.get("val_subset"), "test": toy.get("test_subset")}
    overrides = {**(toy.get("config_overrides") or {}), **(overrides or {})}
    unknown = [op for op in operators if op not in OPERATOR_PAIRS.module_dict]
    if unknown:
        raise ParamsError(f"params.yaml toy.operators: {unknown} are not registered operator pairs; "
                          f"known: {sorted(OPERATOR_PAIRS.module_dict)}")
    files, unavailable = resolve_datasets(datasets, toy, cache_dir, allow_download)
    datasets = [name for name in datasets if name in files]
    results: dict[str, Any] = {}
    grids: dict[str, dict[str, np.ndarray]] = {}
    for name in datasets:
        results[name], grids[name] = {}, {}
        for operator in operators:
            runs = []
            for seed in seeds:
                work_dir = Path(runs_dir) / name / operator / f"seed{seed}"
                cfg = build_run_config(dataset_files=files[name], operator=operator, seed=seed, epochs=epochs,
                                       batch_size=batch_size, counts=counts, work_dir=work_dir, dvclive=dvclive,
                                       overrides=overrides)
                runs.append(run_toy(cfg, keep_checkpoints=keep_checkpoints))
                logger.info("toy %s/%s/seed %d: best test PSNR %.2f dB", name, operator, seed,
                            runs[-1]["best"]["psnr"])
            results[name][operator] = aggregate_seeds(runs)
            grids[name][operator] = np.load(Path(runs_dir) / name / operator / f"seed{seeds[0]}" / "grid.npy")
        test_set = ToyReconstructionDataset(files[name], "test", counts["test"])
        grids[name]["input"] = test_set.images[grid_indices(len(test_set))][:, 0].numpy()
    metrics = {"protocol": PROTOCOL, "profile": toy.get("profile"), "epochs": epochs, "subset": counts["train"],
               "val_subset": counts["val"], "test_subset": counts["test"], "seeds": list(seeds),
               "batch_size": batch_size, "milestones": scaled_milestones(epochs),
               "data": {name: str(files[name]["train_images"].parent) for name in datasets}, "results": results,
               "unavailable": unavailable}
    return metrics, grids


def resolve_datasets(datasets: list[str], toy: dict[str, Any], cache_dir: str | Path,
                     allow_download: bool) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """IDX files of every dataset; with `toy.on_missing_dataset: report`, a dataset that cannot be found is
    recorded (with the resolver's message: places tried and the fix) instead of failing the stage.

    The default policy is `error`. At least one dataset must resolve in either case.
    """
    policy = toy.get("on_missing_dataset", "error")
    if policy not in ("error", "report"):
        raise ParamsError(f"params.yaml toy.on_missing_dataset must be 'error' or 'report', got {policy!r}")
    files: dict[str, dict[str, Path]] = {}
    unavailable: dict[str, str] = {}
    for name in datasets:
        try:
            files[name] = resolve_idx_dir(name, toy.get("data_dirs"), cache_dir, allow_download)
        except DatasetNotFoundError as exc:
            if policy == "error":
                raise
            logger.warning("toy: dataset %s is NOT available and is left out of this run "
                           "(toy.on_missing_dataset: report):\n%s", name, exc)
            unavailable[name] = str(exc)
    if not files:
        raise DatasetNotFoundError("toy: none of the datasets " + ", ".join(datasets) + " could be found:\n"
                                   + "\n".join(unavailable.values()))
    return files, unavailable
