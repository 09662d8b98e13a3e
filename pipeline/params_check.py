"""Check every section of params.yaml at once, before DVC expands the pipeline.

    python -m pipeline.params_check params.yaml     # `make repro` runs it before `dvc repro`

DVC resolves `foreach`/`matrix` stages (train@<variant>-<seed>, evaluate@<variant>) from params.yaml before any
stage runs, so a wrong type there (e.g. `train.variants: a2u`, a string) stops DVC with an error that names no
key. This check reads every section with its stage's typed params (the same code the stages run) and prints
the first problem with the key that holds it; exit status 2 on a problem.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.core.params import BaseParams, ParamsError, load_params, read_section


def check_params(path: str | Path) -> list[str]:
    """The sections of `path` that were checked; ParamsError (naming the key) on the first bad value."""
    from pipeline.bench.params import BenchParams
    from pipeline.compose.params import ComposeParams
    from pipeline.matting.params import EvaluateParams, load_train_params
    from pipeline.report.params import ReportParams
    from pipeline.toy.params import ToyParams

    params = load_params(path)
    base = read_section(params, "base", BaseParams)
    for name, cls in (("compose", ComposeParams), ("toy", ToyParams), ("evaluate", EvaluateParams),
                      ("bench", BenchParams), ("report", ReportParams)):
        read_section(params, name, cls, profile=base.profile)
    load_train_params(path)
    return ["base", "compose", "toy", "train", "evaluate", "bench", "report"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "params.yaml"
    try:
        check_params(path)
    except (ParamsError, FileNotFoundError) as err:
        print(f"params check failed: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
