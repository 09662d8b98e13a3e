"""Pin the math libraries' run-to-run switches before torch loads (import this first in every entry point).

    from pipeline.core.mathenv import pin_math_env
    pin_math_env()          # before `import torch`: MKL reads these once, when it is loaded

Intel MKL, which torch's CPU build uses for its GEMMs (`mm`, `addmm`, `bmm`, the im2col convolutions that
oneDNN does not take), is not bitwise reproducible in its default mode: with `MKL_DYNAMIC=TRUE` it may run a
call on fewer threads than asked for, and without conditional numerical reproducibility (CNR, `MKL_CBWR`) it
picks kernels by CPU model and may change the order of a reduction between runs. Training amplifies one
flipped bit into another model. The pinned values:

- `MKL_CBWR=COMPATIBLE`: MKL's CNR mode on its compatible code path (the same results on every x86 CPU MKL
  supports, for a fixed thread count);
- `MKL_DYNAMIC=FALSE`: MKL uses exactly the threads torch asks for.

A value the user already set wins (e.g. `MKL_CBWR=AUTO` for speed). Measured cost, and what it does not fix
(oneDNN's ISA choice changes the digits across CPUs): README "Same digits".
"""
from __future__ import annotations

import os
import sys
import warnings

#: The switches and their pinned values (see the module docstring).
PINNED: dict[str, str] = {"MKL_CBWR": "COMPATIBLE", "MKL_DYNAMIC": "FALSE"}


def pin_math_env() -> dict[str, str]:
    """Set every `PINNED` variable the environment does not set yet; return the values in force.

    Warns (once) when torch was imported before and a pinned variable was missing then: MKL has already read its
    settings, so this process runs unpinned (child processes still inherit the pinned values).
    """
    missing = [name for name in PINNED if name not in os.environ]
    for name in missing:
        os.environ[name] = PINNED[name]
    if missing and "torch" in sys.modules:
        warnings.warn(f"pin_math_env(): torch was imported before {', '.join(missing)} were set; MKL in this "
                      f"process keeps its defaults (import pipeline.core.mathenv first)", RuntimeWarning,
                      stacklevel=2)
    return {name: os.environ[name] for name in PINNED}
