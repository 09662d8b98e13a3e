"""`run.json` beside every stage's outputs: versions, git revision, params used, machine and wall time."""
from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from pipeline.core.io import write_json

PACKAGES = ("torch", "mmengine", "mmcv-lite", "mmcv", "numpy", "scipy", "scikit-image", "opencv-python",
            "dvc", "dvclive", "onnxruntime")


def _plain(params: Any) -> Any:
    """A params dataclass (or a plain mapping) as JSON-able data."""
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results (absent ones are skipped)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def git_revision(cwd: str | Path = ".") -> str:
    """The current commit (with '-dirty' when the tree has changes), or 'unknown' outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Processor, core count and (when present) the CUDA device."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "python": platform.python_version()}
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


class StageTimer:
    """Measure a stage's wall time and write `run.json` (with the typed params it ran with) into its outputs."""

    def __init__(self, stage: str, params: Any, base: Any = None) -> None:
        self.stage, self.start = stage, time.perf_counter()
        self.params = _plain(params)
        if base is not None:
            self.params = {"base": _plain(base), stage: self.params}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def write(self, out_dir: str | Path, **extra: Any) -> Path:
        info = {"stage": self.stage, "params": self.params, "wall_time_s": round(self.elapsed(), 2),
                "git_revision": git_revision(), "packages": package_versions(), "machine": machine_info(),
                **extra}
        return write_json(Path(out_dir) / "run.json", info)
