"""One MMEngine Runner run per (dataset, operator, seed) of the toy track, and the seed aggregation.

`build_run_config` merges the per-run knobs (IDX files, operator, seed, budget) into the layered config
`configs/toy/recover-net_1xb100-100e_toy.py` (its schedule scaled to the budget by `scale_schedule`);
`run_toy` trains in a run folder of `pipeline.core.runs` (a finished run is reused, an interrupted one
resumed, a stale one never touched; `reuse_finished_runs` retrains all when every run is finished, i.e. when
the stage was forced), evaluates the last and the best-by-validation-PSNR checkpoints on the
test split, stores the reconstructions of a fixed set of test images for the grid figure, and records the
result. `aggregate_seeds` gives mean ± std (sample std; 0 for one seed).
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

import models  # noqa: F401  (registers the operator pairs)
import models.toy  # noqa: F401  (registers ToyReconstructionNet)
from models.registry import OPERATOR_PAIRS
from pipeline.core.compat import allow_mmengine_checkpoint_globals
from pipeline.core.params import ParamsError
from pipeline.core.runs import (AtomicCheckpointRunner, checkpoint_step, find_best_checkpoint, open_run,
                                prune_other_runs, run_fingerprint, run_state, scale_schedule, strip_prefixes)
from pipeline.toy.datasets import DEFAULT_CACHE, DatasetNotFoundError, ToyReconstructionDataset, resolve_idx_dir
from pipeline.toy.metrics import METRIC_NAMES
from pipeline.toy.curve import read_curve
from pipeline.toy.params import ToyParams
from pipeline.toy.stats import mean_curve, mean_std, paired_difference, plateau_epoch
from pipeline.toy.tables import paired_cell, significance_sentences

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs/toy/recover-net_1xb100-100e_toy.py"
PROTOCOL = "ours (modelled on the authors' group harness)"
GRID_IMAGES = 8
#: Sources whose content defines a run's result (a change starts the run afresh).
CODE = ("models/**/*.py", "pipeline/core/**/*.py", "pipeline/toy/**/*.py", "configs/toy/**/*.py")
_RUN_COUNTER = itertools.count()


def grid_indices(n_test: int, count: int = GRID_IMAGES) -> list[int]:
    """A fixed, evenly spread set of `count` test-split positions (the same for every operator and seed)."""
    return sorted({int(i) for i in np.linspace(0, n_test - 1, min(count, n_test))})


def file_sha256(path: str | Path) -> str:
    """Content hash of one input file (the IDX files of a run are part of its identity).

    Cached per (path, size, mtime) within the process: the runs of one invocation share their four files.
    """
    stat = os.stat(path)
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_identity(cfg: Config) -> tuple[Path, str]:
    """(root, fingerprint) of the run `cfg` describes: config, toy code and the IDX files' content hashes."""
    inputs = {key: file_sha256(path) for key, path in sorted(cfg.train_dataloader.dataset.files.items())}
    return Path(cfg.work_dir), run_fingerprint(cfg, CODE, inputs)


def build_run_config(*, dataset_files: dict[str, Path], operator: str, seed: int, epochs: int, batch_size: int,
                     counts: dict[str, int | None], work_dir: str | Path, dvclive: bool = True,
                     overrides: dict[str, Any] | None = None, config_file: str | Path = DEFAULT_CONFIG,
                     threads: int = 1) -> Config:
    """The merged MMEngine config of one run (its `work_dir` is the run's root; `run_toy` picks the folder).

    `counts` maps 'train' / 'val' / 'test' to a subset size or None; `overrides` are dotted config keys merged
    last (e.g. {'model.channels': (8, 16, 32)} for fast tests). `threads` (torch intra-op threads of the run)
    is part of the config, hence of the run's identity: float sums depend on it, so a result never depends on
    how many runs share the machine.
    """
    # yapf-formatting the config text (logged, dumped and stored in every checkpoint) costs seconds per call.
    cfg = Config.fromfile(str(config_file), format_python_code=False)
    object.__setattr__(cfg, "_format_python_code", False)  # mmengine 0.10.7's fromfile drops the argument
    files = {k: str(v) for k, v in dataset_files.items()}
    for split, loader in (("train", "train_dataloader"), ("val", "val_dataloader"), ("test", "test_dataloader")):
        cfg[loader].batch_size = batch_size
        cfg[loader].dataset.files = files
        cfg[loader].dataset.count = counts.get(split)
    cfg.train_dataloader.sampler.seed = seed
    cfg.model.operator = operator
    scale_schedule(cfg, epochs)
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = str(work_dir)
    cfg.torch_threads = int(threads)
    if not dvclive:
        cfg.visualizer.vis_backends = [b for b in cfg.visualizer.vis_backends
                                       if b["type"] != "SafeDVCLiveVisBackend"]
    if overrides:
        cfg.merge_from_dict(overrides)
    return cfg


@torch.no_grad()
def _reconstruct_grid(runner: AtomicCheckpointRunner, indices: list[int]) -> np.ndarray:
    """Clipped reconstructions (len(indices)×H×W float32) of the given test-split positions."""
    dataset = runner.test_dataloader.dataset
    images = torch.stack([dataset[i]["inputs"] for i in indices])
    model = runner.model
    model.eval()
    return model.reconstruct(images.to(next(model.parameters()).device)).clamp(0, 1)[:, 0].cpu().numpy()


def run_toy(cfg: Config, keep_checkpoints: bool = False, reuse_finished: bool = True) -> dict[str, Any]:
    """Train (or resume, or reuse) one run and evaluate its last and best checkpoints on the test split.

    `cfg.work_dir` is the run's root; the run itself lives in `<root>/<fingerprint>` (config, toy code and
    the IDX files' content hashes), and older folders under the root are removed once it has finished. A
    finished run is reused when `reuse_finished`, else trained again (`run_track` decides, see there).
    """
    root, fingerprint = run_identity(cfg)
    run = open_run(root, fingerprint, reuse_finished=reuse_finished)
    if run.result is not None:
        logger.debug("%s: reusing the finished run", run.path)
        return {**run.result, "reused": True}
    allow_mmengine_checkpoint_globals()
    started = time.perf_counter()
    cfg.work_dir = str(run.path)
    cfg.resume, cfg.load_from = run.resume_from is not None, str(run.resume_from) if run.resume_from else None
    cfg.experiment_name = f"toy_{fingerprint}_{next(_RUN_COUNTER)}"
    for backend in cfg.visualizer.vis_backends:
        if backend["type"] == "SafeDVCLiveVisBackend":
            backend["save_dir"] = str(run.path / "dvclive")
            backend["resume_step"] = checkpoint_step(run.resume_from) if run.resume_from else None
    torch.set_num_threads(int(cfg.get("torch_threads", torch.get_num_threads())))
    runner = AtomicCheckpointRunner.from_cfg(cfg)
    runner.train()
    last = strip_prefixes(runner.test(), METRIC_NAMES)
    last["epoch"] = runner.epoch
    best_path = find_best_checkpoint(run.path)
    if best_path is None:
        raise RuntimeError(f"{run.path}: the checkpoint hook kept no best checkpoint")
    runner.load_checkpoint(str(best_path))
    best = strip_prefixes(runner.test(), METRIC_NAMES)
    best["epoch"] = checkpoint_step(best_path)
    indices = grid_indices(len(runner.test_dataloader.dataset))
    np.save(run.path / "grid.npy", _reconstruct_grid(runner, indices))
    result = {"operator": cfg.model.operator, "seed": cfg.randomness["seed"], "best": best, "last": last,
              "params": sum(p.numel() for p in runner.model.parameters() if p.requires_grad),
              "n_test": len(runner.test_dataloader.dataset), "grid_indices": indices,
              "resumed": run.resume_from is not None, "fingerprint": fingerprint, "run_dir": str(run.path),
              "curve": read_curve(run.path), "train_seconds": round(time.perf_counter() - started, 2)}
    if not keep_checkpoints:
        for checkpoint in run.path.glob("*.pth"):
            checkpoint.unlink()
    run.write_result(result)
    prune_other_runs(root, keep=run.path)
    return result


def reuse_finished_runs(configs: Iterable[Config]) -> bool:
    """Whether this invocation reuses the finished runs among `configs` (the toy stage's reuse rule).

    Yes while at least one run is new or interrupted: the stage runs because something changed (an operator or
    seed added, a run killed), and the finished runs of unchanged fingerprints stay valid. No when every run is
    already finished: DVC runs an unchanged stage only when forced (`dvc repro -f`) or when its outputs were
    lost, so the invocation retrains them all rather than silently returning the old results.
    """
    states = [run_state(*run_identity(cfg)) for cfg in configs]
    if states and all(state == "finished" for state in states):
        logger.info("all %d runs already finished with these inputs; the stage was forced or its outputs "
                    "lost, so every run is trained again", len(states))
        return False
    logger.info("%d of %d runs finished earlier with the same fingerprint are reused",
                states.count("finished"), len(states))
    return True


def aggregate_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed results of one (dataset, operator) (in seed order) -> {'params', 'best': {metric: mean/std},
    'last': {...}, 'per_seed': {seed: best test PSNR}, 'curve': mean validation PSNR per epoch, 'plateau_epoch'}."""
    if not runs:
        raise ValueError("aggregate_seeds: no runs given")
    params = {r["params"] for r in runs}
    if len(params) != 1:
        raise ValueError(f"runs of one operator disagree on the parameter count: {sorted(params)}")
    out: dict[str, Any] = {"params": params.pop(), "n_test": runs[0]["n_test"]}
    for which in ("best", "last"):
        out[which] = {key: mean_std([r[which][key] for r in runs]) for key in (*METRIC_NAMES, "epoch")}
    out["per_seed"] = {str(r["seed"]): r["best"]["psnr"] for r in runs}
    curves = [r.get("curve", {}).get("psnr") for r in runs]
    if all(curves):
        out["curve"] = {"epoch": runs[0]["curve"]["epoch"], "psnr": mean_curve(curves)}
        out["plateau_epoch"] = plateau_epoch(out["curve"]["psnr"])
    return out


def compare_to_baseline(results: dict[str, dict[str, Any]], baseline: str, confidence: float) -> None:
    """Add `paired` (best test PSNR minus the baseline's, paired by seed, with its t-interval) to each operator."""
    if baseline not in results:
        return
    reference = results[baseline]["per_seed"]
    for operator, row in results.items():
        if operator != baseline:
            seeds = sorted(reference, key=int)
            row["paired"] = {"baseline": baseline, "metric": "psnr", **paired_difference(
                [row["per_seed"][s] for s in seeds], [reference[s] for s in seeds], confidence)}
            row["paired"]["text"] = paired_cell(row)


def _run_in_worker(cfg: Config, keep_checkpoints: bool, reuse: bool) -> dict[str, Any]:
    """`run_toy` in a pool process (single-threaded BLAS/OpenMP there: the run's own thread count applies).

    A fresh interpreter has not run the config's `custom_imports` (the parent did, when it read the file), so
    they are imported here before the Runner looks its hooks and datasets up in the registries.
    """
    logging.basicConfig(level=logging.WARNING)
    # MMEngine compares the config's start method for data workers (the toy uses none) with this process's
    # (spawn) and warns; nothing forks here.
    warnings.filterwarnings("ignore", message="Multi-processing start method")
    if cfg.get("custom_imports"):
        import_modules_from_strings(**cfg.custom_imports)
    return run_toy(cfg, keep_checkpoints=keep_checkpoints, reuse_finished=reuse)


def _execute(configs: dict[tuple, Config], workers: int, keep_checkpoints: bool, reuse: bool
             ) -> dict[tuple, dict[str, Any]]:
    """Run every config (in `workers` processes when > 1), logging 'toy run k/N' as runs start and finish."""
    total, results = len(configs), {}
    if workers <= 1:
        for done, (key, cfg) in enumerate(configs.items(), start=1):
            logger.info("toy run %d/%d: %s %s seed %d", done, total, *key)
            results[key] = run_toy(cfg, keep_checkpoints=keep_checkpoints, reuse_finished=reuse)
            _log_finished(done, total, key, results[key])
        return results
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked OpenMP or registry state
    logger.info("%d runs in %d processes (1 thread each)", total, workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_limit_threads) as pool:
        futures = {pool.submit(_run_in_worker, cfg, keep_checkpoints, reuse): key for key, cfg in configs.items()}
        for done, future in enumerate(as_completed(futures), start=1):
            key = futures[future]
            results[key] = future.result()
            _log_finished(done, total, key, results[key])
    return {key: results[key] for key in configs}


def _limit_threads() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def _log_finished(done: int, total: int, key: tuple, result: dict[str, Any]) -> None:
    logger.info("toy run %d/%d: %s %s seed %d: best test PSNR %.2f dB at epoch %d (%s)", done, total, *key,
                result["best"]["psnr"], result["best"]["epoch"],
                f"{result.get('train_seconds', 0):.0f} s" if not result.get("reused") else "reused")


def run_track(toy: ToyParams, runs_dir: str | Path, *, cache_dir: str | Path = DEFAULT_CACHE,
              allow_download: bool = True, dvclive: bool = True, overrides: dict[str, Any] | None = None,
              keep_checkpoints: bool = False, profile: str | None = None
              ) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Every (dataset, operator, seed) run of the `toy` params, `toy.workers` at a time.

    `toy.config_overrides` (dotted MMEngine config keys) are merged into every run, before `overrides`.

    Returns:
        summary: the `results/toy/summary.json` content (protocol, budget, per dataset/operator mean ± std,
            per-seed results, the paired difference to `toy.baseline` with its interval, learning curves);
        grids: {dataset: {'input': 8×32×32, <operator>: 8×32×32}} test images and first-seed reconstructions.
    """
    overrides = {**toy.config_overrides, **(overrides or {})}
    unknown = [op for op in toy.operators if op not in OPERATOR_PAIRS.module_dict]
    if unknown:
        raise ParamsError(f"params.yaml: toy.operators {unknown} are not registered operator pairs; "
                          f"known: {sorted(OPERATOR_PAIRS.module_dict)}")
    files, unavailable = resolve_datasets(toy, cache_dir, allow_download)
    datasets = [name for name in toy.datasets if name in files]
    counts = toy.counts
    configs = {(name, operator, seed): build_run_config(
        dataset_files=files[name], operator=operator, seed=seed, epochs=toy.epochs, batch_size=toy.batch_size,
        counts=counts, work_dir=Path(runs_dir) / name / operator / f"seed{seed}", dvclive=dvclive,
        overrides=overrides, threads=toy.threads)
        for name in datasets for operator in toy.operators for seed in toy.seeds}
    reuse = reuse_finished_runs(configs.values())
    done = _execute(configs, min(toy.workers, len(configs)), keep_checkpoints, reuse)
    milestones = next(iter(configs.values())).param_scheduler[0]["milestones"] if configs else []
    results: dict[str, Any] = {}
    grids: dict[str, dict[str, np.ndarray]] = {}
    for name in datasets:
        results[name], grids[name] = {}, {}
        for operator in toy.operators:
            runs = [done[(name, operator, seed)] for seed in toy.seeds]
            results[name][operator] = aggregate_seeds(runs)
            grids[name][operator] = np.load(Path(runs[0]["run_dir"]) / "grid.npy")
        compare_to_baseline(results[name], toy.baseline, toy.confidence)
        test_set = ToyReconstructionDataset(files[name], "test", counts["test"])
        grids[name]["input"] = test_set.images[grid_indices(len(test_set))][:, 0].numpy()
    summary = {"protocol": PROTOCOL, "profile": profile, "epochs": toy.epochs, "subset": counts["train"],
               "val_subset": counts["val"], "test_subset": counts["test"], "seeds": list(toy.seeds),
               "batch_size": toy.batch_size, "milestones": milestones, "threads_per_run": toy.threads,
               "baseline": toy.baseline, "confidence": toy.confidence,
               "data": {name: str(files[name]["train_images"].parent) for name in datasets}, "results": results,
               "unavailable": unavailable}
    summary["findings"] = {name: significance_sentences(summary, name) for name in datasets}
    return summary, grids


def resolve_datasets(toy: ToyParams, cache_dir: str | Path, allow_download: bool
                     ) -> tuple[dict[str, dict[str, Path]], dict[str, str]]:
    """IDX files of every dataset; with `toy.on_missing_dataset: report`, a dataset that cannot be found is
    recorded (with the resolver's message: places tried and the fix) instead of failing the stage.

    At least one dataset must resolve in either case.
    """
    files: dict[str, dict[str, Path]] = {}
    unavailable: dict[str, str] = {}
    for name in toy.datasets:
        try:
            files[name] = resolve_idx_dir(name, toy.data_dirs, cache_dir, allow_download)
        except DatasetNotFoundError as exc:
            if toy.on_missing_dataset == "error":
                raise
            logger.warning("dataset %s is NOT available and is left out of this run "
                           "(toy.on_missing_dataset: report):\n%s", name, exc)
            unavailable[name] = str(exc)
    if not files:
        raise DatasetNotFoundError("toy: none of the datasets " + ", ".join(toy.datasets) + " could be found:\n"
                                   + "\n".join(unavailable.values()))
    return files, unavailable
