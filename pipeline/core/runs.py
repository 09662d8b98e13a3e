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
is complete or absent; `open_run` removes the temporaries a killed save left. `scale_schedule` shortens the
config's own schedule (its milestones scale with the budget: 120k/156k of 180k iterations become 600/780 of
900), so the config file stays the recipe.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from pipeline.core.io import write_json
from pipeline.core.logs import QuietConsoleMixin

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_NAME = "result.json"
#: MMEngine's checkpoint names: `iter_<n>.pth` / `epoch_<n>.pth` and the hook's `best_<metric>_<unit>_<n>.pth`.
STEP_CHECKPOINT = re.compile(r"^(?:iter|epoch)_(\d+)\.pth$")
BEST_CHECKPOINT = re.compile(r"^best_.*_(?:iter|epoch)_(\d+)\.pth$")


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


def prune_other_runs(work_root: str | Path, keep: str | Path) -> list[Path]:
    """Delete the run folders under `work_root` other than `keep` (older recipes, code or data); return them."""
    keep, root = Path(keep).resolve(), Path(work_root).resolve()
    removed = [p for p in root.iterdir() if p.is_dir() and p != keep] if root.is_dir() else []
    for path in removed:
        shutil.rmtree(path)
    return removed


# ----------------------------------------------------------------------------------------------- checkpoints
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


@RUNNERS.register_module()
class AtomicCheckpointRunner(QuietConsoleMixin, Runner):
    """MMEngine Runner whose checkpoints appear only complete: saved to `.<name>.tmp`, then renamed.

    Its console is quiet (`pipeline.core.logs.QuietConsoleMixin`): MMEngine's INFO output goes to the log file.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self.cfg, "__class__", _FormattedOnceConfig)  # the config is final once the Runner exists

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> None:
        temporary = f".{filename}.tmp"
        super().save_checkpoint(out_dir, temporary, *args, **kwargs)
        os.replace(os.path.join(out_dir, temporary), os.path.join(out_dir, filename))


# ----------------------------------------------------------------------------------------------- schedule
def scale_schedule(cfg: Config, new_max: int) -> list[int]:
    """Shorten the config's training loop to `new_max` iterations (or epochs) and scale its milestones alike.

    Milestone m of a config written for `max` becomes round(m · new_max / max); those outside [1, new_max) do
    nothing and are dropped. Returns the milestones of the first MultiStep-style scheduler (for the record).
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
