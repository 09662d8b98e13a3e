"""Build and run MMEngine matting training from a config file plus the `train` params, resuming safely.

    cfg = training_config(profile_config('cpu'), TrainParams(iters=200), seed=6, data_root='data/composed',
                          work_root='work_dirs/train/carafe', variant='carafe')
    result = run_training(cfg)          # resumes from the newest iter_<n>.pth of the same run
    export_training(result, 'results/train/carafe', summary={...}, timer=StageTimer(...))

The recipe is a config file, one per profile, named by what it runs (`configs/matting/
a2u-matting_r34-mini_1xb4-500i_synthetic-128px_cpu.py`, `..._2xb8-180k_comp1k-512px_paper.py`, ...). The `train`
params override single keys (null keeps the config's value). `training_config` resolves everything into the
config that runs and is saved as `config.py`:
- the variant name (any registered operator pair) -> `model.network.upsampler`;
- `iters` -> `train_cfg.max_iters`, the config's own lr milestones scaled with it (`scale_schedule`);
- `crop` / the config's `crop_size` -> CropAroundUnknown (RandomResizeForeground at 5/4 of it);
- `batch_size` / the config's `total_batch_size` -> the per-process batch (total / processes);
- `val_source` / the config's `val_source` -> the validation loop on that data, or none at all (then the last
  checkpoint is what evaluate uses; the test split is never a validation source);
- `encoder_weights` -> `model.network.encoder_init_cfg = dict(type='Pretrained', checkpoint=...)`, loaded by
  MMEngine's own `init_weights()` in `Runner.train()` (see models/matting/pretrained.py);
- the config's top-level helper variables (`max_iters`, `crop_size`, `train_pipeline`, ...) are set to the values
  that run, so the dumped config never shows a recipe that did not run.

The run folder is `<work_root>/<fingerprint>` (`pipeline.core.runs`): the fingerprint hashes the resolved
config, the code that shapes the result, the composed data's `set_hash` and the content of a local encoder
weights file or validation folder, so a changed recipe, code or data never resumes a stale checkpoint, and an
interrupted run of the same recipe resumes where it stopped. A run whose export finished (`result.json`) is
never reused: running the stage again (`dvc repro -f`, lost outputs) retrains. The export records each
checkpoint's sha256 in `summary.json` (verified by `load_matting_model`); a successful export removes the other
(older) run folders under `<work_root>`.
"""
from __future__ import annotations

import copy
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
from mmengine.runner import Runner

import models  # noqa: F401  (registers operators, pairs and networks)
import models.matting.losses  # noqa: F401
import models.matting.mattor  # noqa: F401
import pipeline.matting.dataset  # noqa: F401
import pipeline.matting.transforms  # noqa: F401
import pipeline.matting.val_metric  # noqa: F401
from models.matting.inputs import NETWORK_STRIDE
from models.matting.pretrained import ensure_cached, is_url
from pipeline.core.compat import allow_mmengine_checkpoint_globals
from pipeline.core.distributed import init_cpu_process_group
from pipeline.core.hooks import LastValMetricsHook
from pipeline.core.io import atomic_dir, write_json
from pipeline.core.params import PROFILES, ParamsError
from pipeline.core.runs import (AtomicCheckpointRunner, RunDir, checkpoint_step, find_best_checkpoint,
                                find_resume_checkpoint, open_run, prune_other_runs, run_fingerprint, scale_schedule,
                                strip_prefixes)
from pipeline.matting.checkpoint import checkpoint_record, export_weights
from pipeline.matting.params import NONE, TrainParams, registered_pairs

logger = logging.getLogger(__name__)

#: Code whose change must not resume an older run's checkpoints (the train stage's code deps).
CODE = ("models/**/*.py", "pipeline/core/**/*.py", "pipeline/matting/**/*.py")
#: The composed set's summary (its `set_hash` identifies the data a run trains on).
DATA_SUMMARY = "summary.json"
#: `val_source` naming the composed set's held-out `val/` split.
COMPOSED = "composed"


# ------------------------------------------------------------------------------------------------ choices
def profile_config(profile: str, config_dir: str | Path = "configs/matting") -> Path:
    """The one config file of `profile` in `config_dir` (`*_<profile>.py`); errors name the folder and profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; profiles: {', '.join(PROFILES)}")
    found = sorted(Path(config_dir).glob(f"*_{profile}.py"))
    if len(found) != 1:
        raise FileNotFoundError(f"{config_dir}: expected exactly one config '*_{profile}.py' for profile "
                                f"{profile!r}, found {[p.name for p in found]}")
    return found[0]


def resolve_config_file(params: TrainParams, profile: str, config_dir: str | Path = "configs/matting") -> Path:
    """`train.config` (a path, or a name inside `config_dir`) or, when null, the profile's config."""
    if params.config is None:
        return profile_config(profile, config_dir)
    for path in (Path(params.config), Path(config_dir) / params.config):
        if path.is_file():
            return path
    raise ParamsError(f"params.yaml: train.config {params.config!r} is neither a file nor a file in {config_dir}")


def check_variant(variant: str) -> str:
    """`variant` if it names a registered operator pair; ValueError listing the registered pairs otherwise."""
    known = registered_pairs()
    if variant not in known:
        raise ValueError(f"unknown training variant {variant!r}: not a registered operator pair; registered: "
                         f"{', '.join(known)}")
    return variant


def encoder_init_cfg(weights: str) -> dict | None:
    """`train.encoder_weights` -> the encoder's MMEngine init_cfg ('none' -> None; a missing file is an error)."""
    if weights == NONE:
        return None
    if is_url(weights):
        return dict(type="Pretrained", checkpoint=weights)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ParamsError(f"params.yaml: train.encoder_weights {weights!r} is not a file (give a local ResNet-34 "
                          f"checkpoint, an https URL, or 'none')")
    return dict(type="Pretrained", checkpoint=str(path.resolve()))


def resolve_val_source(source: str | None, data_root: str | Path) -> Path | None:
    """The validation folder of `source` (None / 'none': no validation; 'composed': `<data_root>/val`; a folder).

    The folder must hold image/, alpha/ and trimap/ with at least one image and must not be (or lie inside) the
    composed test split: validation never selects on the test set.
    """
    if source is None or source == NONE:
        return None
    folder = Path(data_root) / "val" if source == COMPOSED else Path(source).expanduser()
    test = (Path(data_root) / "test").resolve()
    if folder.resolve() == test or test in folder.resolve().parents:
        raise ParamsError(f"params.yaml: train.val_source {source!r} is the test split {test}: validation never "
                          f"selects on the test set")
    missing = [kind for kind in ("image", "alpha", "trimap") if not (folder / kind).is_dir()]
    if missing:
        raise ParamsError(f"params.yaml: train.val_source {source!r}: {folder} lacks {missing} (a validation set is "
                          f"image/, alpha/, trimap/ with the same file names)")
    listed = folder / "list.txt"
    empty = not listed.read_text().split() if listed.is_file() else not any((folder / "image").glob("*.png"))
    if empty:
        raise ParamsError(
            f"params.yaml: train.val_source {source!r}: {folder} has no validation images"
            + (" (compose.source comp1k holds no foregrounds out of training, the published protocol; use a "
               "folder or 'none')" if source == COMPOSED else ""))
    return folder


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


def _content_hash(paths: Sequence[Path], root: Path | None = None) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root) if root else path.name).encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _input_identity(cfg: Config, data_root: str | Path, val_folder: Path | None) -> dict[str, str]:
    """Content identities of everything a run reads: composed set, local encoder weights, outside val folder."""
    identity = data_identity(data_root)
    init = (cfg.model.get("network") or {}).get("encoder_init_cfg") or {}
    checkpoint = init.get("checkpoint") if isinstance(init, dict) else None
    if checkpoint and not is_url(str(checkpoint)) and Path(checkpoint).is_file():
        identity["encoder_weights"] = _content_hash([Path(checkpoint)])
    if val_folder is not None and val_folder.resolve() != (Path(data_root) / "val").resolve():
        identity["val_source"] = _content_hash([p for p in val_folder.rglob("*") if p.is_file()], val_folder)
    return identity


# ------------------------------------------------------------------------------------------------ config
def _set_if_present(cfg: Config, key: str, value: Any) -> None:
    if key in cfg:
        cfg[key] = value


def training_config(config_file: str | Path, params: TrainParams, *, seed: int, data_root: str | Path,
                    work_root: str | Path, launcher: str = "none", extra: dict | None = None,
                    variant: str | None = None) -> Config:
    """Load `config_file`, apply `variant` and the non-null `train` params, and resolve it into the config that runs.

    `params.batch_size` (else the config's `total_batch_size`) is the total over all processes. `extra` is merged
    before the resolution of sizes (`Config.merge_from_dict`, dotted keys allowed). The work dir becomes
    `<work_root>/<fingerprint>`. See the module docstring for what is resolved.
    """
    cfg = Config.fromfile(str(config_file))
    if variant is not None:
        cfg.model.network.upsampler = check_variant(variant)
    if params.encoder_weights is not None:
        cfg.model.network.encoder_init_cfg = encoder_init_cfg(params.encoder_weights)
    if params.val_source is not None:
        cfg.val_source = params.val_source
    if params.width is not None:
        cfg.model.network.width = float(params.width)
    if extra:
        cfg.merge_from_dict(extra)
    cfg.randomness = dict(seed=int(seed), deterministic=False)
    val_folder = resolve_recipe(cfg, params, data_root=data_root, launcher=launcher, origin=str(config_file))
    identity = _input_identity(cfg, data_root, val_folder)
    cfg.work_dir = str(Path(work_root).resolve() / run_fingerprint(cfg, CODE, identity, 12))
    for backend in cfg.visualizer.vis_backends:
        if backend["type"] == "SafeDVCLiveVisBackend":
            backend["save_dir"] = str(Path(cfg.work_dir) / "dvclive")
    return cfg


def resolve_recipe(cfg: Config, params: TrainParams | None = None, *, data_root: str | Path | None = None,
                   launcher: str = "none", origin: str = "config") -> Path | None:
    """Resolve a matting config in place into the configuration that runs; return the validation folder.

    The config's top-level knobs `crop_size`, `total_batch_size`, `val_source` (and `params`' non-null keys,
    which win) set the training crop (CropAroundUnknown; RandomResizeForeground at 5/4 of it), the per-process
    batch (total / processes), the validation loop (none at all without a source) and the checkpoint/log
    intervals; the helper variables are rewritten to what runs. With `data_root` the loaders read
    `<data_root>/train` (and `<data_root>/val` for `val_source: composed`); without it (tools/train.py) the
    loaders' own roots stay. The stage (`training_config`) and `tools/train.py` both call this, so a config file
    means the same thing to both.
    """
    params = params or TrainParams()
    if params.iters is not None:
        scale_schedule(cfg, params.iters)
    if params.val_interval is not None:
        cfg.train_cfg.val_interval = params.val_interval
    if params.lr is not None:
        cfg.optim_wrapper.optimizer.lr = float(params.lr)

    world = _world_size(launcher)
    total = params.batch_size if params.batch_size is not None else int(cfg.get("total_batch_size", 0) or 0)
    if total < 1:
        raise ValueError(f"{origin}: no total_batch_size (and train.batch_size is null)")
    if total % world:
        raise ValueError(f"train.batch_size {total} is not divisible by the {world} processes")
    crop = params.crop if params.crop is not None else int(cfg.get("crop_size", 0) or 0)
    if crop < NETWORK_STRIDE or crop % NETWORK_STRIDE:
        raise ValueError(f"{origin}: crop_size {crop} is not a positive multiple of {NETWORK_STRIDE}")
    loader = cfg.train_dataloader
    loader.batch_size = total // world
    if data_root is not None:
        loader.dataset.data_root = str(Path(data_root) / "train")
    for step in loader.dataset.pipeline:
        if step["type"] == "CropAroundUnknown":
            step["crop"] = crop
        elif step["type"] == "RandomResizeForeground":
            step["size"] = crop * 5 // 4  # 640 for the paper's 512 crop
    if params.num_workers is not None:
        loader.num_workers = params.num_workers

    val_root = Path(data_root) if data_root is not None else Path(cfg.get("data_root", "data/composed"))
    val_folder = resolve_val_source(cfg.get("val_source"), val_root) if data_root is not None else \
        (None if cfg.get("val_source") in (None, NONE) else Path(cfg.val_dataloader.dataset.data_root))
    if val_folder is None:
        cfg.val_source = None
        cfg.val_dataloader, cfg.val_cfg, cfg.val_evaluator = None, None, None
        cfg.default_hooks.checkpoint.save_best = None
        cfg.default_hooks.checkpoint.pop("rule", None)
    else:
        if cfg.get("val_dataloader") is None or cfg.get("val_cfg") is None or cfg.get("val_evaluator") is None:
            raise ValueError(f"{origin}: val_source {cfg.val_source!r} needs val_dataloader, val_cfg and "
                             f"val_evaluator in the config")
        cfg.val_dataloader.dataset.data_root = str(val_folder)
    for each in (loader, cfg.get("val_dataloader")):
        if each is not None:  # torch refuses persistent workers without workers
            each.persistent_workers = each.num_workers > 0

    max_iters = int(cfg.train_cfg.max_iters)
    val_interval = int(cfg.train_cfg.val_interval)
    cfg.default_hooks.checkpoint.interval = val_interval
    cfg.default_hooks.logger.interval = max(1, min(50, max_iters // 10))
    cfg.log_processor.window_size = cfg.default_hooks.logger.interval
    if torch.cuda.is_available():
        cfg.env_cfg.dist_cfg = dict(backend="nccl")
    else:  # gloo; torch's SyncBatchNorm has no CPU kernel, so rank 0's BN statistics are broadcast instead
        cfg.env_cfg.dist_cfg = dict(backend="gloo")
        cfg.sync_bn = None
        cfg.model_wrapper_cfg.broadcast_buffers = True
    cfg.launcher = launcher

    # The config's helper variables say what runs (the dumped config.py is the configuration that ran).
    cfg.crop_size, cfg.total_batch_size = crop, total
    _set_if_present(cfg, "max_iters", max_iters)
    _set_if_present(cfg, "val_interval", val_interval)
    if data_root is not None:
        _set_if_present(cfg, "data_root", str(data_root))
    _set_if_present(cfg, "train_pipeline", copy.deepcopy(loader.dataset.pipeline))
    if cfg.get("val_dataloader") is not None:
        _set_if_present(cfg, "val_pipeline", copy.deepcopy(cfg.val_dataloader.dataset.pipeline))
    return val_folder


def recipe(cfg: Config) -> dict[str, Any]:
    """The resolved recipe of a training config, for summaries and logs (what `training_config` settled)."""
    network = cfg.model.get("network") or {}
    init = network.get("encoder_init_cfg") or None
    milestones = next((s.get("milestones") for s in cfg.get("param_scheduler") or [] if "milestones" in s), None)
    ema = next((h for h in cfg.get("custom_hooks") or [] if h.get("type") == "EMAHook"), None)
    return {"upsampler": network.get("upsampler"), "width": float(network.get("width", 1.0)),
            "seed": int(cfg.randomness.seed), "iters": int(cfg.train_cfg.max_iters),
            "val_interval": int(cfg.train_cfg.val_interval), "crop": int(cfg.crop_size),
            "batch_size": int(cfg.total_batch_size), "batch_per_process": int(cfg.train_dataloader.batch_size),
            "lr": float(cfg.optim_wrapper.optimizer.lr), "milestones": list(milestones or []),
            "lr_schedule": [s.get("type") for s in cfg.get("param_scheduler") or []],
            "ema_momentum": float(ema.get("momentum", 0.0002)) if ema else None,
            "num_workers": int(cfg.train_dataloader.num_workers), "val_source": cfg.get("val_source"),
            "encoder_weights": init.get("checkpoint") if isinstance(init, dict) else None}


# ------------------------------------------------------------------------------------------------ run
@dataclass
class TrainResult:
    """What `run_training` leaves: the runner, its work dir, the last validation metrics, the resume source,
    whether the run validated and how the encoder was initialised."""

    runner: Runner
    work_dir: Path
    final_val: dict[str, float] = field(default_factory=dict)
    resumed_from: Path | None = None
    validated: bool = False
    encoder_init: dict[str, Any] = field(default_factory=dict)


def _encoder_checkpoint(cfg: Config) -> str | None:
    init = (cfg.model.get("network") or {}).get("encoder_init_cfg") or {}
    return str(init["checkpoint"]) if isinstance(init, dict) and init.get("checkpoint") else None


def run_training(cfg: Config, extra_hooks: Sequence[Hook] = ()) -> TrainResult:
    """Train (resuming from the newest complete `iter_<n>.pth` of this work dir) and validate once more if needed.

    An https encoder checkpoint is fetched into torch.hub's cache before the Runner is built, so a machine
    without network fails at once with the URL, the cache path and the setting to change. `extra_hooks` are
    registered on the Runner without entering the config (so the work-dir fingerprint and the resume decision do
    not depend on them); tests use this to observe training.
    """
    allow_mmengine_checkpoint_globals()
    checkpoint = _encoder_checkpoint(cfg)
    if checkpoint and is_url(checkpoint) and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        ensure_cached(checkpoint)
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
    validated = cfg.get("val_cfg") is not None
    final_val: dict[str, float] = {}
    if validated:
        hook = next(h for h in runner.hooks if isinstance(h, LastValMetricsHook))
        final_val = strip_prefixes(hook.metrics or {k: float(v) for k, v in runner.val().items()})
    model = getattr(runner.model, "module", runner.model)
    encoder = getattr(getattr(model, "network", None), "encoder", None)
    report = getattr(encoder, "pretrained_report", None)
    encoder_init = report.as_dict() if report is not None else {"checkpoint": None, "init": "random"}
    return TrainResult(runner=runner, work_dir=work_dir, final_val=final_val, resumed_from=resume_from,
                       validated=validated, encoder_init=encoder_init)


def _concatenate_logs(work_dir: Path, target: Path) -> None:
    """All MMEngine text logs of the work dir (one per start, oldest first) into one file."""
    parts = [log.read_text() for log in sorted(work_dir.glob("*/*.log"))]
    target.write_text("".join(parts))


def validation_curve(dvclive_dir: Path, metric: str = "sad") -> dict[str, list] | None:
    """{'iters': [...], 'sad': [...]} from DVCLive's plots/metrics/val/<metric>.tsv (None without validation)."""
    tsv = Path(dvclive_dir) / "plots" / "metrics" / "val" / f"{metric}.tsv"
    if not tsv.is_file():
        return None
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:] if line.strip()]
    by_iter = {int(float(row[-2])): float(row[-1]) for row in rows}   # columns: [timestamp,] step, value
    iters = sorted(by_iter)
    return {"iters": iters, metric: [by_iter[i] for i in iters]}


@master_only
def export_training(result: TrainResult, out_dir: str | Path, summary: dict[str, Any], timer: Any = None) -> Path:
    """Write `last.pth`, `best.pth` (only when the run validated), `config.py`, `train_log.txt`, `dvclive/`,
    `summary.json` (and `run.json` when `timer` is a `StageTimer`) into `out_dir`, replacing it whole only when
    everything is written. `summary.json` records which checkpoints exist and how each was chosen."""
    last = find_resume_checkpoint(result.work_dir)
    if last is None:
        raise FileNotFoundError(f"{result.work_dir}: no iter_<n>.pth checkpoint to export")
    best = find_best_checkpoint(result.work_dir) if result.validated else None
    if result.validated and best is None:
        raise FileNotFoundError(f"{result.work_dir}: the run validated but MMEngine kept no best checkpoint")
    val_source = result.runner.cfg.get("val_source")
    checkpoints: dict[str, Any] = {"last": {"iter": checkpoint_step(last), "selected_by": "last iteration"}}
    with atomic_dir(out_dir) as tmp:
        if best is not None:
            selected_by = f"lowest val/sad on val_source {val_source!r}"
            checkpoints["best"] = {"iter": checkpoint_step(best), "selected_by": selected_by}
            export_weights(best, tmp / "best.pth", selected_by=selected_by)
        export_weights(last, tmp / "last.pth", selected_by="last iteration")
        result.runner.cfg.dump(str(tmp / "config.py"))
        _concatenate_logs(result.work_dir, tmp / "train_log.txt")
        if (result.work_dir / "dvclive").is_dir():
            shutil.copytree(result.work_dir / "dvclive", tmp / "dvclive")
        for name, record in checkpoints.items():  # sha256 and size, verified when the checkpoint is loaded
            record.update(checkpoint_record(tmp / f"{name}.pth"))
        write_json(tmp / "summary.json", {
            **summary, "final_val": result.final_val, "validation": {"source": val_source} if best else None,
            "checkpoints": checkpoints, "best_iter": checkpoints.get("best", {}).get("iter"),
            "last_iter": checkpoints["last"]["iter"], "encoder_init": result.encoder_init,
            "val_curve": validation_curve(tmp / "dvclive"),
            "resumed_from": str(result.resumed_from) if result.resumed_from else None,
            "work_dir": str(result.work_dir)})
        if timer is not None:
            timer.write(tmp, outputs=sorted(p.name for p in tmp.iterdir()))
    RunDir(result.work_dir, None, None).write_result({"exported_to": str(out_dir), "checkpoints": checkpoints})
    for stale in prune_other_runs(result.work_dir.parent, keep=result.work_dir):
        logger.info("removed the checkpoints of an older configuration: %s", stale)
    return Path(out_dir)
