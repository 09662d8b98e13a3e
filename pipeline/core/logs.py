"""Quiet console, full logs on disk: how every stage and tool logs.

The console (stderr) gets one short line per event, prefixed with the clock and the stage:

    13:18:35 train@a2u: start (profile cpu) -> results/train/a2u
    13:19:05 train@a2u: iter 120/900 (13%)  loss 0.2134  lr 1.0e-02  0:30 elapsed, eta 3:15
    13:22:51 train@a2u: done in 3:36 -> results/train/a2u

MMEngine's own INFO output (environment and config dumps, hook order, `paramwise_options`, every logger-hook
line) goes only to each run's log file (`<work_dir>/<timestamp>/<timestamp>.log`, which the train stage
copies to `train_log.txt`); its warnings still reach the console. Three pieces do this:

* `setup_logging(stage)`: one console handler on the root logger (library loggers `pipeline.*` and
  `py.warnings` included) with the short format above;
* `QuietConsoleMixin`: a Runner mixin (used by `pipeline.core.runs.AtomicCheckpointRunner`) that lowers the
  MMEngine logger's console handler to WARNING (its file handler keeps INFO), registers `ConsoleProgressHook`
  and uses `BaseLrRuntimeInfoHook`;
* `ConsoleProgressHook`: a periodic progress line (iteration, loss, lr, elapsed, ETA) for runs that last
  longer than `interval_s`, and one line per validation of such runs (short runs print nothing).

`BaseLrRuntimeInfoHook` fixes which learning rate is logged as `lr`: MMEngine logs the first parameter
group's, so with per-module lr multipliers (the matting encoder's 0.01) two variants of one recipe reported
different groups (bilinear 1e-4, A2U 1e-2). `lr` is now the group with the largest lr (the base lr of the
recipe) and `min_lr` the smallest, whenever the groups differ.

Set `A2U_CONSOLE=verbose` to get MMEngine's full INFO output on the console as well.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, Iterator, Sequence

from mmengine.hooks import Hook, RuntimeInfoHook
from mmengine.runner import EpochBasedTrainLoop
from mmengine.registry import HOOKS

#: Environment variable: 'verbose' keeps MMEngine's INFO output on the console.
CONSOLE_ENV = "A2U_CONSOLE"
#: MMEngine warnings about its own internals that every run repeats and no user can act on (MMEngine 0.10.7's
#: CheckpointHook uses its deprecated FileClient; the toy dataset has no class metainfo). They stay in the log
#: file; the console drops them.
BENIGN_MMENGINE_WARNINGS = ('"FileClient" will be deprecated in future',
                            '"HardDiskBackend" is the alias of "LocalBackend"',
                            "has no metainfo. ``dataset_meta``")
PROGRESS_LOGGER = "pipeline.progress"
_HANDLER_NAME = "a2u-console"


class _StageFormatter(logging.Formatter):
    """'HH:MM:SS <stage>: message', with 'WARNING'/'ERROR' before the message for those levels."""

    def __init__(self, stage: str) -> None:
        super().__init__(datefmt="%H:%M:%S")
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname} "
        text = f"{self.formatTime(record, self.datefmt)} {self.stage}: {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(stage: str, level: int = logging.INFO) -> logging.Logger:
    """Route every Python logger to one short console handler labelled `stage`; return the stage's logger.

    Idempotent: a second call replaces the handler (a new label). Python warnings are logged too (once each).
    Under a distributed launcher only rank 0 logs below WARNING (the label gets the rank otherwise).
    """
    rank = int(os.environ.get("RANK", "0") or 0)
    if rank:
        stage, level = f"{stage}[rank {rank}]", max(level, logging.WARNING)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_StageFormatter(stage))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return logging.getLogger(f"stage.{stage}")


def format_duration(seconds: float) -> str:
    """'42.1 s', '3:05' (m:ss) or '1:02:03' (h:mm:ss)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


@contextmanager
def stage_logging(stage: str, outputs: str | Path | Sequence[str | Path], detail: str = "") -> Iterator[logging.Logger]:
    """Set up the console for `stage` and log its start and end (wall time and output paths).

    A failure is logged with its wall time and re-raised; the traceback is left to the caller's exit.
    """
    logger = setup_logging(stage)
    outs = ", ".join(str(o) for o in outputs) if isinstance(outputs, (list, tuple)) else str(outputs)
    logger.info("start%s -> %s", f" ({detail})" if detail else "", outs)
    start = time.perf_counter()
    try:
        yield logger
    except BaseException as exc:  # noqa: BLE001 - logged and re-raised
        logger.error("failed after %s: %s: %s", format_duration(time.perf_counter() - start), type(exc).__name__,
                     exc)
        raise
    logger.info("done in %s -> %s", format_duration(time.perf_counter() - start), outs)


# ----------------------------------------------------------------------------------------------- MMEngine side
class _DropBenign(logging.Filter):
    """Drops the records of `BENIGN_MMENGINE_WARNINGS` (console only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in BENIGN_MMENGINE_WARNINGS)


def quiet_console(mm_logger: logging.Logger) -> None:
    """Lower the console handler(s) of an MMEngine logger to WARNING and drop its benign repeated warnings;
    file handlers keep everything."""
    if os.environ.get(CONSOLE_ENV, "").lower() == "verbose":
        return
    for handler in mm_logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(max(handler.level, logging.WARNING))
            if not any(isinstance(f, _DropBenign) for f in handler.filters):
                handler.addFilter(_DropBenign())


class _LineWriter(io.TextIOBase):
    """A text stream that logs each complete line to `logger` at INFO (for code that calls `print`)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger, self._buffer = logger, ""

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self.logger.info(line)
        return len(text)


@HOOKS.register_module()
class BaseLrRuntimeInfoHook(RuntimeInfoHook):
    """`RuntimeInfoHook` that logs the largest group lr as `lr` (and the smallest as `min_lr` when they differ).

    MMEngine's hook logs `lr[0]`, the first parameter group's, which depends on module order: a variant whose
    first parameters sit in a module with an lr multiplier reports that multiplied lr.
    """

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        runner.message_hub.update_info("iter", runner.iter)
        for name, values in runner.optim_wrapper.get_lr().items():
            values = [float(v) for v in values]
            runner.message_hub.update_scalar(f"train/{name}", max(values))
            if name == "lr" and min(values) != max(values):
                runner.message_hub.update_scalar("train/min_lr", min(values))


def _by_epoch(runner: Any) -> bool:
    """True for an epoch-based training loop (MMEngine's IterBasedTrainLoop also reports max_epochs = 1)."""
    return isinstance(runner.train_loop, EpochBasedTrainLoop)


@contextmanager
def native_stderr_to_log(logger: logging.Logger) -> Iterator[None]:
    """Keep what C/C++ code writes to file descriptor 2 off the console (e.g. torch 2.13's profiler prints
    `USDT:... profiler_start` lines); with `A2U_CONSOLE=verbose` it is passed on to `logger` as warnings."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            if os.environ.get("A2U_CONSOLE") == "verbose":
                for line in captured.read().decode(errors="replace").splitlines():
                    logger.warning("native stderr: %s", line)


@HOOKS.register_module()
class ConsoleProgressHook(Hook):
    """Console progress for long runs: a line every `interval_s` seconds and one per validation.

    Validations of the first `interval_s` seconds are held back and printed before the first progress line, so
    a long run shows every validation and a short run still prints nothing. Lines go to the `pipeline.progress` Python logger (the console handler of `setup_logging`), never to the
    MMEngine log file, which has MMEngine's own lines. A run shorter than `interval_s` prints nothing.

    Args:
        interval_s (float): seconds between progress lines. Default: 30.
    """

    priority = "BELOW_NORMAL"

    def __init__(self, interval_s: float = 30.0) -> None:
        self.interval_s = float(interval_s)
        self.logger = logging.getLogger(PROGRESS_LOGGER)
        self._start = self._last = 0.0
        self._first_iter = 0
        self._held: list[str] = []

    def before_train(self, runner: Any) -> None:
        self._start = self._last = time.perf_counter()
        self._first_iter = runner.iter
        self._held = []

    def _long_enough(self) -> bool:
        return time.perf_counter() - self._start >= self.interval_s

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval_s:
            return
        self._last = now
        for line in self._held:
            self.logger.info(line)
        self._held = []
        done, total = runner.iter + 1, runner.max_iters
        elapsed = now - self._start
        rate = elapsed / max(done - self._first_iter, 1)
        parts = [f"iter {done}/{total} ({100 * done / total:.0f}%)"]
        if _by_epoch(runner):
            parts.insert(0, f"epoch {runner.epoch + 1}/{runner.max_epochs}")
        hub = runner.message_hub
        for key, fmt in (("train/loss", "loss {:.4f}"), ("train/lr", "lr {:.1e}")):
            if key in hub.log_scalars:
                parts.append(fmt.format(hub.get_scalar(key).current()))
        parts.append(f"{format_duration(elapsed)} elapsed, eta {format_duration(rate * (total - done))}")
        self.logger.info("  ".join(parts))

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not metrics:
            return
        shown = ", ".join(f"{key.split('/')[-1]} {value:.4g}" for key, value in metrics.items()
                          if isinstance(value, (int, float)))
        where = f"epoch {runner.epoch}" if _by_epoch(runner) else f"iteration {runner.iter}"
        line = f"validation at {where}: {shown}"
        if self._long_enough():
            self.logger.info(line)
        else:
            self._held.append(line)


class QuietConsoleMixin:
    """Runner mixin: MMEngine's INFO output to the log file only, progress lines on the console.

    Put it before `Runner` in the bases (`class R(QuietConsoleMixin, Runner)`).
    """

    def build_logger(self, *args: Any, **kwargs: Any) -> Any:
        mm_logger = super().build_logger(*args, **kwargs)  # type: ignore[misc]
        quiet_console(mm_logger)
        return mm_logger

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """MMEngine's loader `print`s 'Loads checkpoint by local backend from path: ...': into the log file."""
        with redirect_stdout(_LineWriter(self.logger)):  # type: ignore[attr-defined]
            return super().load_checkpoint(*args, **kwargs)  # type: ignore[misc]

    def register_hooks(self, default_hooks: dict | None = None, custom_hooks: list | None = None) -> None:
        default_hooks = dict(default_hooks or {})
        default_hooks.setdefault("runtime_info", dict(type="BaseLrRuntimeInfoHook"))
        super().register_hooks(default_hooks, custom_hooks)  # type: ignore[misc]
        if not any(isinstance(hook, ConsoleProgressHook) for hook in self.hooks):  # type: ignore[attr-defined]
            self.register_hook(ConsoleProgressHook())  # type: ignore[attr-defined]


#: Errors of a command line's input (missing files, bad values): reported in one line, exit status 2.
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError)


def run_cli(main: Any) -> None:
    """Run a tool's `main()`; an input error (already logged by `stage_logging`) exits with status 2 and no
    traceback, anything else propagates with its traceback."""
    try:
        main()
    except USER_ERRORS:
        raise SystemExit(2) from None
