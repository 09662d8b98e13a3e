"""Run one stage script's `main()` and SIGKILL this process at a chosen point (the interruption tests' driver).

    python tests/test_robustness/kill_driver.py KILL STAGE [ARGS...]

KILL is `none` or `<module>:<attribute path>:<n>[:before]`: the process kills itself with SIGKILL (no
`finally`, no atexit, nothing of Python's cleanup runs) right after — or, with `:before`, just before — the
n-th call of that function, e.g. `pipeline.matting.evaluate:write_image:1` or
`mmengine.runner.loops:IterBasedTrainLoop.run_iter:3`. STAGE names a script of stages/ (compose, toy, train,
evaluate, bench, report); ARGS go to its `main()`. TEST_TORCH_THREADS, when set, fixes torch's thread count
(bitwise equality with the in-process reference run needs the same count).
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def arm(spec: str) -> None:
    """Patch the function named by `spec` so that the process dies at its n-th call."""
    module_name, attribute, count, *when = spec.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original: Callable = getattr(owner, name)
    target, before, calls = int(count), when == ["before"], [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == target and before:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if calls[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def main() -> None:
    kill, stage, *args = sys.argv[1:]
    if os.environ.get("TEST_TORCH_THREADS"):
        import torch

        torch.set_num_threads(int(os.environ["TEST_TORCH_THREADS"]))
    if kill != "none":
        arm(kill)
    module = importlib.import_module(f"stages.{stage}")
    module.main(args)


if __name__ == "__main__":
    main()
