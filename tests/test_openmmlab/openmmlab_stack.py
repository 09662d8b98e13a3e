"""Whether the full OpenMMLab stack (mmcv with compiled ops, mmseg 1.2.2, mmdet 3.3.0) is installed.

Only package metadata and module specs are read, so collecting the tests stays cheap; the tests themselves
import mmseg / mmdet and fail loudly if an installed stack is broken (e.g. mmcv-lite written over mmcv).
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
from pathlib import Path

import pytest

SKIP_REASON = "needs full mmcv with ops + mmseg 1.2.2 + mmdet 3.3.0: run `make openmmlab`"
REQUIRED = {'mmcv': '2.1.0', 'mmsegmentation': '1.2.2', 'mmdet': '3.3.0'}
CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'openmmlab'


def _installed(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def stack_available() -> bool:
    """True when every REQUIRED distribution has its exact version and `mmcv.ops` exists (not mmcv-lite)."""
    if any(_installed(dist) != version for dist, version in REQUIRED.items()):
        return False
    return importlib.util.find_spec('mmcv.ops') is not None


requires_openmmlab = pytest.mark.skipif(not stack_available(), reason=SKIP_REASON)
