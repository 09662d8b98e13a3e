"""Quiet console, full log file: MMEngine's INFO output goes to the file only, stages print one line per event,
long runs print progress, and every run logs the same learning-rate group."""
from __future__ import annotations

import logging
import re
import time
from types import SimpleNamespace

import pytest
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import IterBasedTrainLoop

from pipeline.core.logs import (BaseLrRuntimeInfoHook, ConsoleProgressHook, format_duration, native_stderr_to_log,
                                quiet_console, run_cli, stage_logging)


def test_mmengine_info_goes_to_the_file_only(tmp_path, capsys) -> None:
    log_file = tmp_path / "run.log"
    logger = MMLogger.get_instance(f"quiet-{time.time_ns()}", log_file=str(log_file), log_level="INFO")
    quiet_console(logger)
    logger.info("System environment: a long dump")
    logger.warning('"FileClient" will be deprecated in future. Please use io functions')
    logger.warning("a warning the user must see")
    out = capsys.readouterr().out
    assert "System environment" not in out and "FileClient" not in out
    assert "a warning the user must see" in out
    text = log_file.read_text()
    assert "System environment: a long dump" in text and "FileClient" in text  # nothing lost from the file


def _runner(lrs: list[float], iteration: int = 0) -> SimpleNamespace:
    hub = MessageHub.get_instance(f"hub-{time.time_ns()}")
    return SimpleNamespace(iter=iteration, message_hub=hub,
                           optim_wrapper=SimpleNamespace(get_lr=lambda: {"lr": lrs, "base_lr": [max(lrs)]}))


@pytest.mark.parametrize("lrs", [[1e-4, 1e-2, 1e-2], [1e-2, 1e-4, 1e-2]])
def test_logged_lr_is_the_same_group_whatever_the_parameter_order(lrs: list[float]) -> None:
    """MMEngine logs the first group's lr, so two variants with different module order reported 1e-4 and 1e-2."""
    runner = _runner(lrs)
    BaseLrRuntimeInfoHook().before_train_iter(runner, 0)
    assert runner.message_hub.get_scalar("train/lr").current() == 1e-2
    assert runner.message_hub.get_scalar("train/min_lr").current() == 1e-4


def test_progress_hook_prints_iteration_loss_lr_and_eta(caplog) -> None:
    runner = _runner([1e-2], iteration=0)
    runner.max_iters, runner.epoch, runner.max_epochs = 10, 0, 1
    # MMEngine's iteration loop also reports max_epochs == 1: the lines must still speak of iterations
    runner.train_loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    runner.train_loop._max_epochs, runner.train_loop._max_iters = 1, 10
    runner.message_hub.update_scalar("train/loss", 0.25)
    runner.message_hub.update_scalar("train/lr", 1e-2)
    hook = ConsoleProgressHook(interval_s=0.0)
    hook.before_train(runner)
    runner.iter = 4
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        hook.after_train_iter(runner, 4)
        hook.after_val_epoch(runner, {"val/sad": 1.5, "val/mse": 0.01})
    line, val = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"iter 5/10 \(50%\)  loss 0\.2500  lr 1\.0e-02  .* elapsed, eta .*", line), line
    assert val == "validation at iteration 4: sad 1.5, mse 0.01"


def test_short_runs_print_no_progress(caplog) -> None:
    runner = _runner([1e-2])
    runner.max_iters, runner.train_loop = 10, SimpleNamespace()
    hook = ConsoleProgressHook(interval_s=3600)
    hook.before_train(runner)
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        hook.after_train_iter(runner, 0)
        hook.after_val_epoch(runner, {"val/sad": 1.0})
    assert not caplog.records


def test_an_early_validation_is_printed_with_the_first_progress_line(caplog) -> None:
    """A validation before the first progress line is held back, not lost (the log showed none at iteration 100)."""
    runner = _runner([1e-2], iteration=0)
    runner.max_iters, runner.train_loop = 10, SimpleNamespace()
    hook = ConsoleProgressHook(interval_s=3600)
    hook.before_train(runner)
    runner.iter = 2
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        hook.after_val_epoch(runner, {"val/sad": 1.0})
        assert not caplog.records
        hook.interval_s = 0.0  # the run turned out long
        hook.after_train_iter(runner, 2)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "validation at iteration 2: sad 1" and messages[1].startswith("iter 3/10")


def test_stage_logging_prints_start_and_end_with_time_and_outputs(capsys) -> None:
    with stage_logging("train@a2u", "results/train/a2u") as log:
        log.info("something happened")
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d train@a2u: start -> results/train/a2u", lines[0])
    assert lines[1].endswith("train@a2u: something happened")
    assert re.fullmatch(r"\d\d:\d\d:\d\d train@a2u: done in \d+\.\d s -> results/train/a2u", lines[2])
    with pytest.raises(ValueError), stage_logging("demo", "x.png"):
        raise ValueError("bad trimap")
    assert "demo: ERROR failed after" in capsys.readouterr().err


def test_input_errors_exit_with_status_2_and_others_propagate() -> None:
    def bad_input() -> None:
        raise FileNotFoundError("x.png: not found")

    def bug() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(SystemExit) as info:
        run_cli(bad_input)
    assert info.value.code == 2
    with pytest.raises(RuntimeError):
        run_cli(bug)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (4.25, 65, 3725)] == ["4.2 s", "1:05", "1:02:05"]


def test_native_stderr_is_kept_off_the_console(capfd, monkeypatch) -> None:
    """C-level writes to fd 2 (torch's profiler prints `USDT:...` lines) do not reach the console."""
    import os

    monkeypatch.delenv("A2U_CONSOLE", raising=False)
    with native_stderr_to_log(logging.getLogger("test")):
        os.write(2, b"USDT: profiler_start\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_progress_hook_is_registered_under_its_own_name() -> None:
    """A config can name it (`dict(type='ConsoleProgressHook')`); a helper must not take its registration."""
    from mmengine.registry import HOOKS

    assert HOOKS.get("ConsoleProgressHook") is ConsoleProgressHook
    assert HOOKS.get("_by_epoch") is None
