"""`run.json` beside every stage's outputs: versions, git revision, params used, machine and wall time."""
from __future__ import annotations

import dataclasses
import importlib.metadata as md
import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from pipeline.core.io import write_json

PACKAGES = ("torch", "mmengine", "mmcv-lite", "mmcv", "numpy", "scipy", "scikit-image", "opencv-python",
            "dvc", "dvclive", "onnxruntime")
#: /proc/cpuinfo flags kept in run.json (the SIMD ones that decide which kernels MKL, oneDNN and ATen run).
SIMD_FLAG_PREFIXES = ("avx", "sse", "ssse", "fma", "amx", "f16c", "vnni", "bmi")
#: Environment variables that change math libraries' threading, dispatch or numerics.
MATH_ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "ONEDNN_", "DNNL_", "ATEN_", "OPENBLAS_")
CPUINFO = Path("/proc/cpuinfo")


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


def _cpuinfo_fields(path: Path = CPUINFO) -> dict[str, str]:
    """The first processor's `key: value` fields of /proc/cpuinfo ({} where it does not exist, e.g. macOS)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break                                    # end of the first processor's block
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_info(path: Path = CPUINFO) -> dict[str, Any]:
    """cpu_model, cpu_vendor, cpu_flags (the SIMD ones, sorted) and microcode; None where unknown."""
    fields = _cpuinfo_fields(path)
    model = fields.get("model name") or fields.get("Model") or platform.processor() or None
    flags = fields.get("flags", fields.get("Features"))
    return {"cpu_model": " ".join(model.split()) if model else None,
            "cpu_vendor": fields.get("vendor_id") or fields.get("CPU implementer") or None,
            "cpu_flags": None if flags is None else sorted({f for f in flags.split()
                                                             if f.startswith(SIMD_FLAG_PREFIXES)}),
            "microcode": fields.get("microcode") or None}


def _config_line(config: str, pattern: str) -> str | None:
    """The first line of `torch.__config__.show()` naming `pattern` with a version number (not Build settings)."""
    for raw in config.splitlines():
        line = raw.strip().lstrip("-").strip()
        if "=" in line or line.startswith("Build settings"):
            continue
        if re.search(pattern, line) and re.search(r"\d+\.\d+", line):
            return line
    return None


def torch_math_info() -> dict[str, Any]:
    """torch's CPU kernel dispatch level, thread pools and the MKL / oneDNN builds it runs (None where unknown)."""
    import torch

    info: dict[str, Any] = {"torch_cpu_capability": None, "torch_parallel_info": None, "mkl_version": None,
                            "onednn_version": None}
    try:
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        pass
    try:
        info["torch_parallel_info"] = [ln.strip() for ln in torch.__config__.parallel_info().splitlines() if ln.strip()]
    except (AttributeError, RuntimeError):
        pass
    try:
        config = torch.__config__.show()
    except (AttributeError, RuntimeError):
        return info
    info["mkl_version"] = _config_line(config, r"Math Kernel Library|oneMKL|\bMKL\b(?![-_]?DNN)")
    info["onednn_version"] = _config_line(config, r"(?i)onednn|mkl-?dnn")
    return info


def math_env(environ: Any = None) -> dict[str, str]:
    """Every OMP_*, MKL_*, KMP_*, ONEDNN_*, DNNL_*, ATEN_*, OPENBLAS_* environment variable, sorted by name."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ) if k.startswith(MATH_ENV_PREFIXES)}


def machine_info() -> dict[str, Any]:
    """Processor (model, vendor, SIMD flags, microcode), core count, torch's threads, CPU capability and math
    libraries, the math libraries' environment variables and (when present) the CUDA device."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "python": platform.python_version()}
    info.update(cpu_info())
    info.update(torch_math_info())
    info["math_env"] = math_env()
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def _simd_level(flags: list[str] | None) -> str | None:
    """The widest SIMD extension among /proc/cpuinfo flags, with AMX appended when present."""
    if not flags:
        return None
    levels = ("avx512", "avx2", "avx", "sse4_2", "sse2")
    level = next((name for name in levels if any(f.startswith(name) for f in flags)), None)
    amx = any(f.startswith("amx") for f in flags)
    return ", ".join(x for x in (level, "amx" if amx else None) if x) or None


def host_label(info: dict[str, Any]) -> str:
    """One short line naming the host of a `machine_info()` dict, for reports, e.g.
    'AMD EPYC 9R14 (avx512), torch CPU capability AVX512, 2 threads'; missing keys are left out."""
    model = info.get("cpu_model") or info.get("processor") or "unknown CPU"
    simd = _simd_level(info.get("cpu_flags"))
    parts = [f"{model} ({simd})" if simd else str(model)]
    if info.get("torch_cpu_capability"):
        parts.append(f"torch CPU capability {info['torch_cpu_capability']}")
    threads = info.get("torch_threads")
    if threads:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    if info.get("cuda_device"):
        parts.append(str(info["cuda_device"]))
    return ", ".join(parts)


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
