"""MMEngine hooks and the DVCLive backend used by matting training.

* `ExactResumeHook` makes a resumed run continue exactly where the interrupted one stopped:
  - it stores torch's global RNG state (CPU and CUDA) in every checkpoint and restores it on resume, so dropout
    draws what an uninterrupted run would have drawn. numpy's state is deliberately *not* restored: MMEngine
    re-runs the data pipeline for the skipped iterations on resume, which replays numpy's stream from the seed;
  - validation is RNG-neutral: torch's state is saved before and restored after every validation (creating a
    DataLoader iterator draws from torch's generator), so the training stream does not depend on whether a
    validation ran in this process;
  - the message hub's `HistoryBuffer`s are stored as plain arrays: their pickled form needs `builtins.getattr`,
    which torch's weights-only loader (torch >= 2.6) rejects; they are rebuilt on load.
* `LastValMetricsHook` keeps the metrics of the most recent validation for the stage's `summary.json`.
* `SafeDVCLiveVisBackend` is MMEngine's `DVCLiveVisBackend` without its side effects on the repository: it never
  runs `dvc init`, never rewrites `dvc.yaml` (`dvcyaml=False`), never saves a DVC experiment and logs no artifacts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import HOOKS, VISBACKENDS
from mmengine.visualization import DVCLiveVisBackend

from pipeline.core.io import write_text

RNG_KEY = "rng_state"
BUFFER_KEY = "__history_buffer__"


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """RNG state and weights-only-loadable logs in checkpoints; RNG-neutral validation (see module docstring)."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self._before_val: dict[str, torch.Tensor] | None = None

    def before_val_epoch(self, runner: Any) -> None:
        self._before_val = _rng_state()

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if self._before_val is not None:
            _set_rng_state(self._before_val)
            self._before_val = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = self._before_val if self._before_val is not None else _rng_state()
        scalars = (checkpoint.get("message_hub") or {}).get("log_scalars") or {}
        for key, buffer in list(scalars.items()):
            if isinstance(buffer, HistoryBuffer):
                log_history, count_history = buffer.data
                scalars[key] = {BUFFER_KEY: True, "log_history": np.asarray(log_history),
                                "count_history": np.asarray(count_history), "max_length": int(buffer.max_length)}

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        scalars = (checkpoint.get("message_hub") or {}).get("log_scalars") or {}
        for key, value in list(scalars.items()):
            if isinstance(value, dict) and value.get(BUFFER_KEY):
                scalars[key] = HistoryBuffer(list(value["log_history"]), list(value["count_history"]),
                                             value["max_length"])
        if not getattr(runner, "_resume", False):
            return  # loading weights to test or fine-tune: the RNG stays as seeded
        state = checkpoint.get(RNG_KEY)
        if state is None:
            runner.logger.warning("checkpoint has no RNG state: a resumed run may differ from an uninterrupted one")
            return
        _set_rng_state(state)


@HOOKS.register_module()
class LastValMetricsHook(Hook):
    """Remember the latest validation metrics in `self.metrics` (a dict, empty until the first validation)."""

    priority = "LOW"

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        self.metrics = {key: float(value) for key, value in (metrics or {}).items()}


def trim_dvclive_steps(save_dir: str | Path, last_step: int) -> int:
    """Drop the rows logged after `last_step` from DVCLive's `plots/metrics/**/*.tsv`; return how many.

    After an interruption the resumed run logs the iterations since its checkpoint again; without trimming,
    those steps would appear twice in the curves.
    """
    dropped = 0
    for path in sorted(Path(save_dir).glob("plots/metrics/**/*.tsv")):
        header, *rows = path.read_text().splitlines()
        kept = [row for row in rows if int(float(row.split("\t", 1)[0])) <= last_step]
        if len(kept) != len(rows):
            dropped += len(rows) - len(kept)
            write_text(path, "\n".join([header, *kept]) + "\n")
    return dropped


@VISBACKENDS.register_module()
class SafeDVCLiveVisBackend(DVCLiveVisBackend):
    """DVCLive logging that leaves `dvc.yaml`, `.dvc/` and the DVC experiment list alone.

    Args:
        save_dir (str): the DVCLive folder (e.g. `work_dirs/train/a2u/<run>/dvclive`).
        resume_step (int, optional): continue an existing log after an interruption, first dropping the steps
            after this one (those of the resumed checkpoint's iteration onwards are logged again). Default: None
            (start a fresh log).
    """

    def __init__(self, save_dir: str, resume_step: int | None = None, **kwargs: Any) -> None:
        init_kwargs = dict(kwargs.pop("init_kwargs", None) or {})
        init_kwargs.update(dvcyaml=False, save_dvc_exp=False, resume=resume_step is not None)
        super().__init__(save_dir, init_kwargs=init_kwargs, **kwargs)
        self.resume_step = resume_step

    def _init_env(self) -> None:
        from dvclive import Live

        if self.resume_step is not None:
            trim_dvclive_steps(self._save_dir, self.resume_step)
        self._init_kwargs.setdefault("dir", self._save_dir)
        self._dvclive = Live(**self._init_kwargs)

    def close(self) -> None:
        if hasattr(self, "_dvclive"):
            self._dvclive.end()
