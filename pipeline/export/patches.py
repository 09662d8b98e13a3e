"""Kept for compatibility: the export-friendly generator steps now live in `models.ops.traceable` and the
generator switches to them by itself while tracing or exporting, so a plain `torch.onnx.export` of an A2U
module works without any patching."""
from __future__ import annotations

import contextlib
from typing import Iterator

from models.ops.traceable import adaptive_avg_pool2d_by_matrices, depthwise_correlation_plain

__all__ = ["adaptive_avg_pool2d_by_matrices", "depthwise_correlation_plain", "export_patches"]


@contextlib.contextmanager
def export_patches() -> Iterator[None]:
    """No-op: nothing needs patching any more (see models/ops/traceable.py)."""
    yield
