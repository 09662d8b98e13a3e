"""Make mmengine 0.10.7 checkpoints loadable under torch >= 2.6 without turning weights-only loading off.

torch >= 2.6 defaults `torch.load(weights_only=True)`; mmengine's checkpoints carry a `HistoryBuffer` and numpy
scalars/arrays in their `message_hub` state, which the weights-only unpickler refuses. We allow exactly those
globals (see open-mmlab/mmengine#1655) before any Runner loads anything.
"""
from __future__ import annotations

import numpy as np
import torch

_DONE = False


def allow_mmengine_checkpoint_globals() -> None:
    """Register the few non-tensor types mmengine stores in checkpoints as safe for weights-only loading."""
    global _DONE
    if _DONE:
        return
    from mmengine.logging.history_buffer import HistoryBuffer

    safe: list = [HistoryBuffer, np.ndarray, np.dtype, np.core.multiarray._reconstruct]  # type: ignore[attr-defined]
    safe += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool", "uint8")]
    safe += [np.float64, np.float32, np.int64, np.int32, np.bool_]
    safe.append(np.core.multiarray.scalar)  # type: ignore[attr-defined]
    torch.serialization.add_safe_globals(safe)
    _DONE = True
