"""Build and run MMEngine matting training from a config file plus the params.yaml budget, resuming safely.

    cfg = training_config(config_for_variant('a2u'), iters=200, crop=128, batch_size=4, val_interval=100,
                          lr=0.01, seed=6, data_root='data/composed', work_root='work_dirs/train/a2u')
    result = run_training(cfg)          # resumes from the newest iter_<n>.pth of the same configuration
    export_training(result, 'results/train/a2u', summary={...}, timer=StageTimer(...))

The MMEngine work dir is `<work_root>/<fingerprint>`: the fingerprint hashes the merged config and the sources
of `models/`, `pipeline/data/` and `pipeline/engine/`, so a changed recipe or code never resumes a stale
checkpoint, and an interrupted run of the same recipe resumes where it stopped. A successful export removes the
other (older) run folders under `<work_root>`.
Checkpoints are written to a hidden temporary and renamed into place (`AtomicCheckpointRunner`).
"""
from __future__ import annotations

import hashlib
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
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import models  # noqa: F401  (registers operators, pairs and networks)
import models.matting.losses  # noqa: F401
import models.matting.mattor  # noqa: F401
import pipeline.data.matting_dataset  # noqa: F401
import pipeline.data.matting_transforms  # noqa: F401
import pipeline.engine.val_metric  # noqa: F401
from pipeline.engine.checkpoint import (export_weights, find_best_checkpoint, find_resume_checkpoint,
                                         resume_iteration)
from pipeline.engine.compat import allow_mmengine_checkpoint_globals
from pipeline.engine.distributed import init_cpu_process_group
from pipeline.engine.hooks import LastValMetricsHook
from pipeline.io import atomic_dir, write_json

logger = logging.getLogger(__name__)

#: One config per variant name of `train.variants` (the paper recipe; params.yaml budgets override its sizes).
VARIANT_CONFIGS = {
    "bilinear": "bilinear_r34_2xb8-180k_comp1k_paper.py",
    "a2u": "a2u_r34_2xb8-180k_comp1k_paper.py",
    "a2u-unshared": "a2u-unshared_r34_2xb8-180k_comp1k_paper.py",
}


def config_for_variant(variant: str, config_dir: str | Path = "configs/matting") -> Path:
    """The config file of `variant`; ValueError lists the known variants, FileNotFoundError names the file."""
    if variant not in VARIANT_CONFIGS:
        raise ValueError(f"unknown training variant {variant!r}; known: {sorted(VARIANT_CONFIGS)}")
    path = Path(config_dir) / VARIANT_CONFIGS[variant]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config of variant {variant!r} not found")
    return path


class _FormattedOnceConfig(Config):
    """A Config whose `pretty_text` (a yapf pass, ~0.7 s) is computed once: the Runner asks at every save."""

    @property
    def pretty_text(self) -> str:
        cached = self.__dict__.get("_pretty_text_once")
        if cached is None:
            cached = super().pretty_text
            object.__setattr__(self, "_pretty_text_once", cached)
        return cached


@RUNNERS.register_module()
class AtomicCheckpointRunner(Runner):
    """MMEngine Runner whose checkpoints appear only complete: saved to `.<name>.tmp`, then renamed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self.cfg, "__class__", _FormattedOnceConfig)  # the config is final once the Runner exists

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        temporary = f".{filename}.tmp"
        super().save_checkpoint(out_dir, temporary, *args, **kwargs)
        os.replace(os.path.join(out_dir, temporary), os.path.join(out_dir, filename))


def _positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"train.{name} must be a positive integer, got {value!r}")
    return value


def _world_size(launcher: str) -> int:
    return int(os.environ.get("WORLD_SIZE", "1")) if launcher != "none" else 1


#: Code whose change must not resume an older run's checkpoints (the train stage's code deps).
SOURCE_DIRS = ("models", "pipeline/data", "pipeline/engine")
REPO_ROOT = Path(__file__).resolve().parents[2]


def source_fingerprint(root: Path = REPO_ROOT) -> str:
    """sha256 over the Python sources in `SOURCE_DIRS` (path + content, sorted)."""
    digest = hashlib.sha256()
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def prune_other_runs(work_root: str | Path, keep: str | Path) -> list[Path]:
    """Delete the run folders under `work_root` other than `keep` (older configurations); return them."""
    keep = Path(keep).resolve()
    removed = [path for path in Path(work_root).resolve().iterdir() if path.is_dir() and path != keep]
    for path in removed:
        shutil.rmtree(path)
    return removed


def milestones_for(iters: int) -> list[int]:
    """MultiStepLR milestones at 2/3 and 13/15 of the iterations (120k and 156k of 180k, spec 5.3)."""
    return sorted({max(1, round(iters * 2 / 3)), max(1, round(iters * 13 / 15))})


def training_config(config_file: str | Path, *, iters: int, crop: int, batch_size: int, val_interval: int,
                    lr: float, seed: int, data_root: str | Path, work_root: str | Path, launcher: str = "none",
                    num_workers: int | None = None, extra: dict | None = None) -> Config:
    """Load `config_file` and merge the budget into it.

    `batch_size` is the total over all processes (per-process = batch_size / WORLD_SIZE). `extra` is merged
    last (`Config.merge_from_dict`, dotted keys allowed). The work dir becomes `<work_root>/<fingerprint>`.
    """
    for name, value in (("iters", iters), ("crop", crop), ("batch_size", batch_size),
                        ("val_interval", val_interval)):
        _positive(name, value)
    if not lr > 0:
        raise ValueError(f"train.lr must be positive, got {lr!r}")
    if crop % 16:
        raise ValueError(f"train.crop must be a multiple of 16 (the network's output stride), got {crop}")
    world = _world_size(launcher)
    if batch_size % world:
        raise ValueError(f"train.batch_size {batch_size} is not divisible by the {world} processes")
    cfg = Config.fromfile(str(config_file))
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = iters, val_interval
    cfg.param_scheduler = [dict(type="MultiStepLR", by_epoch=False, milestones=milestones_for(iters), gamma=0.1)]
    cfg.optim_wrapper.optimizer.lr = float(lr)
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    loader = cfg.train_dataloader
    loader.batch_size = batch_size // world
    loader.dataset.data_root = str(Path(data_root) / "train")
    cfg.val_dataloader.dataset.data_root = str(Path(data_root) / "val")
    for step in loader.dataset.pipeline:
        if step["type"] == "CropAroundUnknown":
            step["crop"] = crop
        elif step["type"] == "RandomResizeForeground":
            step["size"] = crop * 5 // 4  # 640 for the paper's 512 crop
    if num_workers is not None:
        loader.num_workers = int(num_workers)
    for each in (loader, cfg.val_dataloader):
        each.persistent_workers = each.num_workers > 0  # torch refuses persistent workers without workers
    cfg.default_hooks.checkpoint.interval = val_interval
    cfg.default_hooks.logger.interval = max(1, min(50, iters // 10))
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
    digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode())
    digest.update(source_fingerprint().encode())
    fingerprint = digest.hexdigest()[:12]
    cfg.work_dir = str(Path(work_root).resolve() / fingerprint)
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
    work_dir = Path(cfg.work_dir)
    resume_from = find_resume_checkpoint(work_dir)
    cfg.resume, cfg.load_from = resume_from is not None, str(resume_from) if resume_from else None
    for backend in cfg.visualizer.vis_backends:
        if backend["type"] == "SafeDVCLiveVisBackend":
            backend["resume_step"] = resume_iteration(resume_from) if resume_from else None
    init_cpu_process_group(cfg.launcher)
    runner = AtomicCheckpointRunner.from_cfg(cfg)
    for hook in extra_hooks:
        runner.register_hook(hook)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, LastValMetricsHook))
    metrics = hook.metrics or {k: float(v) for k, v in runner.val().items()}
    final_val = {key.split("/")[-1]: value for key, value in metrics.items()}
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
        best_iter = resume_iteration(best or last)
        write_json(tmp / "summary.json", {**summary, "final_val": result.final_val, "best_iter": best_iter,
                                          "resumed_from": str(result.resumed_from) if result.resumed_from else None,
                                          "work_dir": str(result.work_dir)})
        if timer is not None:
            timer.write(tmp, outputs=sorted(p.name for p in tmp.iterdir()))
    for stale in prune_other_runs(result.work_dir.parent, keep=result.work_dir):
        logger.info("removed the checkpoints of an older configuration: %s", stale)
    return Path(out_dir)
