"""Build and run MMEngine matting training from a config file plus the `train` params, resuming safely.

    cfg = training_config(config_for_variant('a2u'), TrainParams(iters=200, crop=128, ...), seed=6,
                          data_root='data/composed', work_root='work_dirs/train/a2u')
    result = run_training(cfg)          # resumes from the newest iter_<n>.pth of the same run
    export_training(result, 'results/train/a2u', summary={...}, timer=StageTimer(...))

The run folder is `<work_root>/<fingerprint>` (`pipeline.core.runs`): the fingerprint hashes the merged
config, the code that shapes the result and the composed data's `set_hash`, so a changed recipe, code or
data never resumes a stale checkpoint, and an interrupted run of the same recipe resumes where it stopped.
A run whose export finished (`result.json`) is never reused: running the stage again (`dvc repro -f`, lost
outputs) retrains. The export records each checkpoint's sha256 in `summary.json`; a successful export removes
the other (older) run folders under `<work_root>`. The config's own lr
milestones are scaled to `iters` (`scale_schedule`), never replaced.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.runner import Runner

import models  # noqa: F401  (registers operators, pairs and networks)
import models.matting.losses  # noqa: F401
import models.matting.mattor  # noqa: F401
import pipeline.matting.dataset  # noqa: F401
import pipeline.matting.transforms  # noqa: F401
import pipeline.matting.val_metric  # noqa: F401
from pipeline.core.compat import allow_mmengine_checkpoint_globals
from pipeline.core.distributed import init_cpu_process_group
from pipeline.core.hooks import LastValMetricsHook
from pipeline.core.io import atomic_dir, write_json
from pipeline.core.runs import (AtomicCheckpointRunner, RunDir, checkpoint_step, find_best_checkpoint,
                                find_resume_checkpoint, open_run, prune_other_runs, run_fingerprint, scale_schedule,
                                strip_prefixes)
from pipeline.matting.checkpoint import checkpoint_record, export_weights
from pipeline.matting.params import TrainParams

logger = logging.getLogger(__name__)

#: One config per variant name of `train.variants` (the paper recipe; params.yaml budgets override its sizes).
VARIANT_CONFIGS = {
    "bilinear": "bilinear_r34_2xb8-180k_comp1k_paper.py",
    "a2u": "a2u_r34_2xb8-180k_comp1k_paper.py",
    "a2u-unshared": "a2u-unshared_r34_2xb8-180k_comp1k_paper.py",
}
#: Code whose change must not resume an older run's checkpoints (the train stage's code deps).
CODE = ("models/**/*.py", "pipeline/core/**/*.py", "pipeline/matting/**/*.py")
#: The composed set's summary (its `set_hash` identifies the data a run trains on).
DATA_SUMMARY = "summary.json"


def config_for_variant(variant: str, config_dir: str | Path = "configs/matting") -> Path:
    """The config file of `variant`; ValueError lists the known variants, FileNotFoundError names the file."""
    if variant not in VARIANT_CONFIGS:
        raise ValueError(f"unknown training variant {variant!r}; known: {sorted(VARIANT_CONFIGS)}")
    path = Path(config_dir) / VARIANT_CONFIGS[variant]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config of variant {variant!r} not found")
    return path


def _world_size(launcher: str) -> int:
    return int(os.environ.get("WORLD_SIZE", "1")) if launcher != "none" else 1


def data_identity(data_root: str | Path) -> dict[str, str]:
    """{'set_hash': ...} of the composed set at `data_root` (its summary.json), for the run fingerprint."""
    summary = Path(data_root) / DATA_SUMMARY
    if not summary.is_file():
        raise FileNotFoundError(f"{summary}: composed set summary not found (run the compose stage first)")
    set_hash = json.loads(summary.read_text()).get("set_hash")
    if not set_hash:
        raise ValueError(f"{summary}: no 'set_hash' entry")
    return {"set_hash": str(set_hash)}


def training_config(config_file: str | Path, params: TrainParams, *, seed: int, data_root: str | Path,
                    work_root: str | Path, launcher: str = "none", extra: dict | None = None) -> Config:
    """Load `config_file` and merge the `train` params into it.

    `params.batch_size` is the total over all processes (per-process = batch_size / WORLD_SIZE). `extra` is
    merged last (`Config.merge_from_dict`, dotted keys allowed). The work dir becomes `<work_root>/<fingerprint>`.
    """
    world = _world_size(launcher)
    if params.batch_size % world:
        raise ValueError(f"train.batch_size {params.batch_size} is not divisible by the {world} processes")
    cfg = Config.fromfile(str(config_file))
    scale_schedule(cfg, params.iters)
    cfg.train_cfg.val_interval = params.val_interval
    cfg.optim_wrapper.optimizer.lr = float(params.lr)
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    loader = cfg.train_dataloader
    loader.batch_size = params.batch_size // world
    loader.dataset.data_root = str(Path(data_root) / "train")
    cfg.val_dataloader.dataset.data_root = str(Path(data_root) / "val")
    for step in loader.dataset.pipeline:
        if step["type"] == "CropAroundUnknown":
            step["crop"] = params.crop
        elif step["type"] == "RandomResizeForeground":
            step["size"] = params.crop * 5 // 4  # 640 for the paper's 512 crop
    loader.num_workers = params.num_workers
    for each in (loader, cfg.val_dataloader):
        each.persistent_workers = each.num_workers > 0  # torch refuses persistent workers without workers
    cfg.default_hooks.checkpoint.interval = params.val_interval
    cfg.default_hooks.logger.interval = max(1, min(50, params.iters // 10))
    cfg.log_processor.window_size = cfg.default_hooks.logger.interval
    if torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(backend="nccl")
    else:  # gloo; torch's SyncBatchNorm has no CPU kernel, so rank 0's BN statistics are broadcast instead
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
        cfg.sync_bn = None
        cfg.model_wrapper_cfg.broadcast_buffers = True
    cfg.launcher = launcher
    if extra:
        cfg.merge_from_dict(extra)
    cfg.work_dir = str(Path(work_root).resolve() / run_fingerprint(cfg, CODE, data_identity(data_root), 12))
    for backend in cfg.visualizer.vis_backends:
        if backend["type"] == "SafeDVCLiveVisBackend":
            backend["save_dir"] = str(Path(cfg.work_dir) / "dvclive")
    return cfg


@dataclass
class TrainResult:
    """What `run_training` leaves: the runner, its work dir, the last validation metrics, the resume source."""

    runner: Runner
    work_dir: Path
    final_val: dict[str, float] = field(default_factory=dict)
    resumed_from: Path | None = None


def run_training(cfg: Config, extra_hooks: Sequence[Hook] = ()) -> TrainResult:
    """Train (resuming from the newest complete `iter_<n>.pth` of this work dir) and validate once more if needed.

    `extra_hooks` are registered on the Runner without entering the config (so the work-dir fingerprint and the
    resume decision do not depend on them); tests use this to observe training.
    """
    allow_mmengine_checkpoint_globals()
    # a finished run of this fingerprint is never reused: the stage runs again only when forced or when its
    # outputs were lost, so it retrains (in a new generation folder); an interrupted one resumes
    run = open_run(Path(cfg.work_dir).parent, Path(cfg.work_dir).name, reuse_finished=False)
    work_dir, resume_from = run.path, run.resume_from
    cfg.work_dir = str(work_dir)
    cfg.resume, cfg.load_from = resume_from is not None, str(resume_from) if resume_from else None
    for backend in cfg.visualizer.vis_backends:
        if backend["type"] == "SafeDVCLiveVisBackend":
            backend["save_dir"] = str(work_dir / "dvclive")
            backend["resume_step"] = checkpoint_step(resume_from) if resume_from else None
    init_cpu_process_group(cfg.launcher)
    runner = AtomicCheckpointRunner.from_cfg(cfg)
    for hook in extra_hooks:
        runner.register_hook(hook)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, LastValMetricsHook))
    metrics = hook.metrics or {k: float(v) for k, v in runner.val().items()}
    final_val = strip_prefixes(metrics)
    return TrainResult(runner=runner, work_dir=work_dir, final_val=final_val, resumed_from=resume_from)


def _concatenate_logs(work_dir: Path, target: Path) -> None:
    """All MMEngine text logs of the work dir (one per start, oldest first) into one file."""
    parts = [log.read_text() for log in sorted(work_dir.glob("*/*.log"))]
    target.write_text("".join(parts))


@master_only
def export_training(result: TrainResult, out_dir: str | Path, summary: dict[str, Any], timer: Any = None) -> Path:
    """Write `best.pth`, `last.pth`, `config.py`, `train_log.txt`, `dvclive/`, `summary.json` (and `run.json`
    when `timer` is a `StageTimer`) into `out_dir`, replacing it whole only when everything is written."""
    last = find_resume_checkpoint(result.work_dir)
    if last is None:
        raise FileNotFoundError(f"{result.work_dir}: no iter_<n>.pth checkpoint to export")
    best = find_best_checkpoint(result.work_dir)
    if best is None:
        logger.warning("no validation happened: best.pth is the last checkpoint")
    with atomic_dir(out_dir) as tmp:
        export_weights(best or last, tmp / "best.pth", selected_by="val/sad (lower is better)" if best else "last")
        export_weights(last, tmp / "last.pth", selected_by="last iteration")
        result.runner.cfg.dump(str(tmp / "config.py"))
        _concatenate_logs(result.work_dir, tmp / "train_log.txt")
        if (result.work_dir / "dvclive").is_dir():
            shutil.copytree(result.work_dir / "dvclive", tmp / "dvclive")
        best_iter = checkpoint_step(best or last)
        checkpoints = {name: checkpoint_record(tmp / name) for name in ("best.pth", "last.pth")}  # verified on load
        write_json(tmp / "summary.json", {**summary, "final_val": result.final_val, "best_iter": best_iter,
                                          "resumed_from": str(result.resumed_from) if result.resumed_from else None,
                                          "work_dir": str(result.work_dir), "checkpoints": checkpoints})
        if timer is not None:
            timer.write(tmp, outputs=sorted(p.name for p in tmp.iterdir()))
    RunDir(result.work_dir, None, None).write_result({"exported_to": str(out_dir), "checkpoints": checkpoints})
    for stale in prune_other_runs(result.work_dir.parent, keep=result.work_dir):
        logger.info("removed the checkpoints of an older configuration: %s", stale)
    return Path(out_dir)
