"""One engine for every training stage's runs (toy and matting): identity, reuse, resume, checkpoints, schedule.

A run lives in `<work_root>/<fingerprint>/` (a later generation: `<fingerprint>.<n>/`), an MMEngine work dir.
The fingerprint hashes the merged config (minus its own location), the content of the code that shapes the
result and the content hashes of every input (the composed set's `set_hash`, the toy IDX files' sha256), so a
changed recipe, code or data gets a fresh folder: nothing stale is ever resumed or reused, and
`prune_other_runs` removes the older folders once the new run is exported.

Within one fingerprint (`open_run`):
- an interrupted run (no `result.json`) resumes from its newest complete checkpoint (`iter_<n>.pth` /
  `epoch_<n>.pth`);
- a finished run (`result.json`, written only after its outputs were exported) is reused only when the caller
  allows it (`reuse_finished`). The rule the stages apply: DVC reruns a stage whose inputs are unchanged only
  when forced (`dvc repro -f`) or when its outputs were lost, so the matting stage never reuses a finished run
  (it retrains, in a new generation folder), and the toy stage reuses finished runs only while another run of
  the same invocation is new (adding an operator does not retrain the others; a forced rerun retrains all).
A new generation rather than deleting the finished folder keeps the decision race-free for DDP ranks: a rank
that looks later sees the new, checkpoint-less folder and also starts fresh.

`AtomicCheckpointRunner` writes each checkpoint to a hidden temporary and renames it, so a checkpoint file
is complete or absent; `open_run` removes the temporaries a killed save left, `remove_half_started_runs` the
run folders of a training that failed before its first checkpoint.

Every checkpoint that any entry point loads goes through `read_checkpoint` (the file: present, complete, zip CRCs,
the size and sha256 recorded at export when known; every failure a `CheckpointError` naming the file) and
`load_state_checked` (the weights against the model: missing or unexpected keys and shapes stop with an error
naming the checkpoint, the config and the first keys that differ; weights load non-strictly only when a caller
passes `strict=False`, i.e. when the user asked for it). `AtomicCheckpointRunner.load_checkpoint` (MMEngine's
`load_from` and resume) uses both, strictly.

`scale_schedule` shortens the config's own schedule (its milestones scale with the budget: 120k/156k of 180k
iterations become 600/780 of 900), so the config file stays the recipe.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import os
import pickle
import re
import shutil
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.model import is_model_wrapper
from mmengine.optim.scheduler.param_scheduler import INF
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from torch import nn

from pipeline.core.compat import allow_mmengine_checkpoint_globals
from pipeline.core.io import write_json
from pipeline.core.logs import QuietConsoleMixin
from pipeline.core.manifest import sha256_file

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_NAME = "result.json"
#: MMEngine's checkpoint names: `iter_<n>.pth` / `epoch_<n>.pth` and the hook's `best_<metric>_<unit>_<n>.pth`.
STEP_CHECKPOINT = re.compile(r"^(?:iter|epoch)_(\d+)\.pth$")
BEST_CHECKPOINT = re.compile(r"^best_.*_(?:iter|epoch)_(\d+)\.pth$")
#: A run folder's name: its fingerprint (hex), and for a later generation `.<n>`.
RUN_FOLDER = re.compile(r"^[0-9a-f]{8,64}(?:\.\d+)?$")
#: The first bytes of a zip archive (torch.save's format since torch 1.6).
_ZIP_MAGIC = b"PK\x03\x04"
#: How many differing keys an error or warning names.
SHOWN_KEYS = 3


# ----------------------------------------------------------------------------------------------- identity
def code_fingerprint(patterns: Iterable[str], root: Path = REPO_ROOT) -> str:
    """sha256 over the files matching the glob `patterns` under `root` (relative path + content, sorted)."""
    digest = hashlib.sha256()
    for path in sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()}):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_fingerprint(cfg: Config, code: Iterable[str], inputs: Mapping[str, str] | None = None,
                    length: int = 16) -> str:
    """Identity of a run: its config (without `work_dir`/`experiment_name`), the code, the input hashes."""
    config = {k: v for k, v in cfg.to_dict().items() if k not in ("work_dir", "experiment_name")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(code_fingerprint(code).encode())
    digest.update(json.dumps(dict(inputs or {}), sort_keys=True).encode())
    return digest.hexdigest()[:length]


@dataclass
class RunDir:
    """A run's work dir and what is there: a finished result, a checkpoint to resume from, or nothing."""

    path: Path
    result: dict[str, Any] | None
    resume_from: Path | None

    def write_result(self, result: dict[str, Any]) -> Path:
        """Mark the run finished (atomically): later calls with the same fingerprint may reuse `result`."""
        return write_json(self.path / RESULT_NAME, result)


def _generations(root: Path, fingerprint: str) -> list[tuple[int, Path]]:
    """The folders of one fingerprint, oldest first: `<fp>` is generation 1, `<fp>.<n>` generation n."""
    found = []
    if root.is_dir():
        for path in root.iterdir():
            if path.name == fingerprint:
                found.append((1, path))
            elif path.name.startswith(f"{fingerprint}.") and path.name[len(fingerprint) + 1:].isdigit():
                found.append((int(path.name[len(fingerprint) + 1:]), path))
    return sorted(p for p in found if p[1].is_dir())


def run_state(work_root: str | Path, fingerprint: str) -> str:
    """'new' (no folder), 'finished' (its newest folder has `result.json`) or 'interrupted'."""
    generations = _generations(Path(work_root).resolve(), fingerprint)
    if not generations:
        return "new"
    return "finished" if (generations[-1][1] / RESULT_NAME).is_file() else "interrupted"


def open_run(work_root: str | Path, fingerprint: str, reuse_finished: bool = True) -> RunDir:
    """The run folder of `fingerprint` under `work_root` (created if new), with its result or resume checkpoint.

    The newest generation is opened: finished -> its result (or, with `reuse_finished=False`, a new empty
    generation `<fp>.<n+1>`: the run is retrained); interrupted -> its newest complete checkpoint, after the
    temporaries (`.*.tmp`) of a killed checkpoint save are removed.
    """
    root = Path(work_root).resolve()
    generations = _generations(root, fingerprint)
    number, path = generations[-1] if generations else (1, root / fingerprint)
    result_file = path / RESULT_NAME
    if result_file.is_file() and not reuse_finished:
        logger.info("%s finished in an earlier invocation and the stage runs again with the same inputs (forced, "
                    "or its outputs were lost): training afresh", path)
        path = root / f"{fingerprint}.{number + 1}"
    path.mkdir(parents=True, exist_ok=True)
    result_file = path / RESULT_NAME
    if result_file.is_file():
        return RunDir(path, json.loads(result_file.read_text()), None)
    for stale in path.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted checkpoint save", stale)
    return RunDir(path, None, find_resume_checkpoint(path))


def half_started_runs(work_root: str | Path) -> list[Path]:
    """The run folders under `work_root` that a training left before its first checkpoint: named like a run
    (`<fingerprint>` or `<fingerprint>.<n>`), without `result.json` and without a complete `iter_<n>.pth` /
    `epoch_<n>.pth` (only logs, DVCLive files or the temporary of a killed first save). Resuming one would start
    from scratch anyway, so nothing is lost when it goes."""
    root = Path(work_root)
    if not root.is_dir():
        return []
    return [path for path in sorted(root.iterdir())
            if path.is_dir() and not path.is_symlink() and RUN_FOLDER.match(path.name)
            and not (path / RESULT_NAME).is_file() and find_resume_checkpoint(path) is None]


def remove_half_started_runs(*work_roots: str | Path) -> list[Path]:
    """Delete the `half_started_runs` of each work root (e.g. the `<fingerprint>.2/` of a training that failed on a
    corrupt foreground before its first checkpoint); log and return them.

    The train stage calls it for its own work root when it starts (single process only: DDP ranks open the same
    folder at once); before `dvc repro`, `python -m pipeline.params_check --remove-leftovers` (`make repro`)
    removes the `half_started_runs` of every matting work root that no process uses, so a folder is not left
    behind when DVC restores the stage from its cache instead of running it.
    """
    removed = [path for root in work_roots for path in half_started_runs(root)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
        logger.info("removed %s, a run that stopped before its first checkpoint", path)
    return removed


def prune_other_runs(work_root: str | Path, keep: str | Path) -> list[Path]:
    """Delete the run folders under `work_root` other than `keep` (older recipes, code or data); return them."""
    keep, root = Path(keep).resolve(), Path(work_root).resolve()
    removed = [p for p in root.iterdir() if p.is_dir() and p != keep] if root.is_dir() else []
    for path in removed:
        shutil.rmtree(path)
    return removed


# ----------------------------------------------------------------------------------------------- checkpoints
class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong with it."""


def verify_checkpoint_file(path: str | Path, expected: Mapping[str, Any] | None = None) -> None:
    """Check a checkpoint file's bytes before unpickling: present, non-empty, the recorded sha256 and size
    (when `expected` is given), a complete zip archive whose members pass their CRC check (torch itself does not
    check them: zeroed bytes would load silently)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file (a checkpoint is one .pth file)")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes); the checkpoint was not written completely")
    if expected is not None:
        if "bytes" in expected and size != expected["bytes"]:
            raise CheckpointError(f"{path}: {size} bytes, but {expected['bytes']} were recorded at export "
                                  "(truncated or replaced)")
        if expected.get("sha256") and sha256_file(path) != expected["sha256"]:
            raise CheckpointError(f"{path}: sha256 does not match the one recorded at export ({expected['sha256']}):"
                                  " the file was damaged or replaced")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (no zip archive header; another format, a config "
                              "file or random bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({size} bytes; the zip archive is "
                              f"incomplete: {exc})") from exc
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (member '{bad}' fails its CRC check)")


def read_checkpoint(path: str | Path, expected: Mapping[str, Any] | None = None, verify: bool = True,
                    map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with weights-only unpickling; every failure is a CheckpointError naming the file.

    `verify` runs `verify_checkpoint_file` first (with the `expected` sha256/size when given). The result has a
    `state_dict` mapping (MMEngine's full checkpoints and the exported slim ones both do).
    """
    path = Path(path)
    if verify:
        verify_checkpoint_file(path, expected)
    elif not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    allow_mmengine_checkpoint_globals()
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot be loaded as a PyTorch checkpoint ({type(exc).__name__}: "
                              f"{first})") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a checkpoint with a 'state_dict' entry")
    return checkpoint


def _shape(value: Any) -> str:
    return "×".join(str(n) for n in value.shape) if value.dim() else "scalar"


@dataclass
class StateDictDiff:
    """How a checkpoint's state dict differs from a model's: keys only in the model, keys only in the checkpoint,
    and common keys whose shapes differ (`key: checkpoint A×B, model C×D`)."""

    missing: list[str]
    unexpected: list[str]
    shapes: list[str]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)

    def describe(self) -> str:
        parts = []
        for keys, what in ((self.unexpected, "in the checkpoint but not in the model"),
                           (self.missing, "of the model missing from the checkpoint"),
                           (self.shapes, "with another shape")):
            if keys:
                shown = ", ".join(keys[:SHOWN_KEYS]) + (", ..." if len(keys) > SHOWN_KEYS else "")
                parts.append(f"{len(keys)} key{'' if len(keys) == 1 else 's'} {what} ({shown})")
        return "; ".join(parts)


def state_dict_diff(model: nn.Module, state: Mapping[str, Any]) -> StateDictDiff:
    """Compare a checkpoint's `state` with `model.state_dict()` (BatchNorm's `num_batches_tracked`, absent from
    old checkpoints, is not required)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {_shape(state[k])}, model {_shape(own[k])}" for k in own
              if k in state and torch.is_tensor(state[k]) and tuple(state[k].shape) != tuple(own[k].shape)]
    return StateDictDiff(missing, unexpected, shapes)


#: MMEngine's default key revision: strip DDP's `module.` prefix.
STRIP_MODULE = ((r"^module\.", ""),)


def revise_state_keys(state: Mapping[str, Any], revisions: Iterable[tuple[str, str]] = STRIP_MODULE
                      ) -> OrderedDict:
    """`state` with each key rewritten by the (pattern, replacement) `revisions` (default: strip DDP's
    `module.` prefix, as MMEngine does), its `_metadata` kept."""
    revised = OrderedDict()
    for key, value in state.items():
        for pattern, replacement in revisions:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    metadata = getattr(state, "_metadata", None)
    if metadata is not None:
        revised._metadata = metadata  # type: ignore[attr-defined]
    return revised


def load_state_checked(model: nn.Module, state: Mapping[str, Any], checkpoint: str | Path, config: Any,
                       strict: bool = True, hint: str = "",
                       revisions: Iterable[tuple[str, str]] = STRIP_MODULE) -> StateDictDiff:
    """Load `state` (a checkpoint's state dict) into `model` (built from `config`) and return what differed.

    strict (the default): any missing or unexpected key or shape mismatch is a CheckpointError naming the
    checkpoint, the config and the first keys that differ (`hint` is appended: how to ask for a non-strict load
    where the caller offers one); nothing is loaded then. Non-strict (only when the user asked for it): the
    weights that fit are loaded and the rest is named in a warning. Keys are first rewritten by `revisions`.
    """
    state = revise_state_keys(state, revisions)
    diff = state_dict_diff(model, state)
    if diff and strict:
        raise CheckpointError(f"{checkpoint} does not fit the model of {config} (another variant or config?): "
                              f"{diff.describe()}" + (f". {hint}" if hint else ""))
    if diff:
        own = model.state_dict()
        fitting = OrderedDict((k, v) for k, v in state.items()
                              if k in own and not (torch.is_tensor(v) and tuple(v.shape) != tuple(own[k].shape)))
        model.load_state_dict(fitting, strict=False)
        logger.warning("%s loaded NON-STRICTLY into the model of %s (as asked): %s; those weights keep their "
                       "initial values or are ignored", checkpoint, config, diff.describe())
    else:
        model.load_state_dict(state, strict=False)  # every key checked above (num_batches_tracked may be absent)
    return diff


def checkpoint_step(path: str | Path) -> int:
    """The iteration/epoch in an MMEngine checkpoint name (`iter_900.pth`, `best_val_sad_iter_300.pth`)."""
    name = Path(path).name
    match = STEP_CHECKPOINT.match(name) or BEST_CHECKPOINT.match(name)
    if match is None:
        raise ValueError(f"{path}: not an MMEngine checkpoint name (iter_<n>.pth / epoch_<n>.pth)")
    return int(match.group(1))


def _newest(work_dir: Path, pattern: re.Pattern) -> Path | None:
    if not work_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in work_dir.glob("*.pth") if (m := pattern.match(p.name))]
    return max(found)[1] if found else None


def find_resume_checkpoint(work_dir: str | Path) -> Path | None:
    """The newest complete `iter_<n>.pth` / `epoch_<n>.pth` in `work_dir` (temporaries are dot-files), or None."""
    return _newest(Path(work_dir), STEP_CHECKPOINT)


def find_best_checkpoint(work_dir: str | Path) -> Path | None:
    """The `best_<metric>_<unit>_<n>.pth` that MMEngine's CheckpointHook kept, or None before any validation."""
    return _newest(Path(work_dir), BEST_CHECKPOINT)


class _FormattedOnceConfig(Config):
    """A Config whose `pretty_text` (a yapf pass, ~0.7 s) is computed once: the Runner asks at every save."""

    @property
    def pretty_text(self) -> str:
        cached = self.__dict__.get("_pretty_text_once")
        if cached is None:
            cached = super().pretty_text
            object.__setattr__(self, "_pretty_text_once", cached)
        return cached


_RUNNER_COUNTER = itertools.count()


@RUNNERS.register_module()
class AtomicCheckpointRunner(QuietConsoleMixin, Runner):
    """MMEngine Runner whose checkpoints appear only complete: saved to `.<name>.tmp`, then renamed.

    Its console is quiet (`pipeline.core.logs.QuietConsoleMixin`): MMEngine's INFO output goes to the log file.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self.cfg, "__class__", _FormattedOnceConfig)  # the config is final once the Runner exists

    @classmethod
    def from_cfg(cls, cfg: Config) -> "AtomicCheckpointRunner":
        """Build from `cfg`, naming the run uniquely within this process when the config does not name it.

        MMEngine names a run `<config stem>_<timestamp in seconds>` and keys its MMLogger and Visualizer
        instances by that name: a second Runner of the same config within the same second would get the first
        one's Visualizer back (its DVCLive folder, its work dir). A per-process counter makes the name unique.
        """
        if not cfg.get("experiment_name"):  # MMEngine appends the timestamp to the name
            cfg = copy.deepcopy(cfg)
            stem = Path(cfg.filename).stem if getattr(cfg, "filename", None) else "config"
            cfg.experiment_name = f"{stem}_run{next(_RUNNER_COUNTER)}"
        return super().from_cfg(cfg)

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        temporary = f".{filename}.tmp"
        super().save_checkpoint(out_dir, temporary, *args, **kwargs)
        os.replace(os.path.join(out_dir, temporary), os.path.join(out_dir, filename))

    def load_checkpoint(self, filename: str, map_location: Any = "cpu", strict: bool = True,
                        revise_keys: Iterable[tuple[str, str]] = STRIP_MODULE) -> dict:
        """Load `filename` into the model, strictly: the path of `load_from` and of resuming (MMEngine's own
        loader is non-strict: it drops the weights that do not fit with one INFO line in the log file).

        The file is checked (`read_checkpoint`: present, complete, CRCs) and its state dict against the model
        (`load_state_checked`); every problem is a CheckpointError naming the checkpoint and the config.
        """
        if "://" in str(filename):  # a URL (`load_from=https://...`): MMEngine fetches it; the weights are checked
            from mmengine.runner.checkpoint import CheckpointLoader

            checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location)
            if "state_dict" not in checkpoint:
                checkpoint = {"state_dict": checkpoint}
        else:
            checkpoint = read_checkpoint(filename, map_location=map_location)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        config = getattr(self.cfg, "filename", None) or "the run's config"
        load_state_checked(model, checkpoint["state_dict"], filename, config, strict=strict, revisions=revise_keys)
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint


# ----------------------------------------------------------------------------------------------- schedule
def scale_schedule(cfg: Config, new_max: int) -> list[int]:
    """Shorten the config's training loop to `new_max` iterations (or epochs) and scale its milestones alike.

    Milestone m of a config written for `max` becomes round(m · new_max / max); those outside [1, new_max) do
    nothing and are dropped. A scheduler's own span (`begin`, `end`, `T_max` of e.g. CosineAnnealingLR) scales
    the same way, so a cosine written for the whole run still ends at the new last iteration. Returns the
    milestones of the first MultiStep-style scheduler (for the record).
    """
    key = "max_iters" if "max_iters" in cfg.train_cfg else "max_epochs"
    old_max = int(cfg.train_cfg[key])
    if new_max < 1:
        raise ValueError(f"the training length must be >= 1, got {new_max}")
    cfg.train_cfg[key] = int(new_max)
    scaled_first: list[int] | None = None
    for scheduler in cfg.get("param_scheduler") or []:
        if "milestones" in scheduler:
            scaled = sorted({round(m * new_max / old_max) for m in scheduler["milestones"]})
            scheduler["milestones"] = [m for m in scaled if 1 <= m < new_max]
            scaled_first = scheduler["milestones"] if scaled_first is None else scaled_first
        for key in ("begin", "end", "T_max"):
            if scheduler.get(key) is not None and scheduler[key] < INF:   # INF: MMEngine's "until the end"
                scheduler[key] = max(round(scheduler[key] * new_max / old_max), 1 if key == "T_max" else 0)
    return scaled_first or []


def strip_prefixes(metrics: Mapping[str, Any], names: Iterable[str] | None = None) -> dict[str, float]:
    """{'val/sad': 1.0, 'recon/psnr': 2.0} -> {'sad': 1.0, 'psnr': 2.0}, keeping only `names` when given."""
    keep = set(names) if names is not None else None
    out = {}
    for key, value in metrics.items():
        short = key.split("/")[-1]
        if keep is None or short in keep:
            out[short] = float(value)
    return out
