"""Ahead-of-time build of the fused CPU ops (`models/ops/csrc/a2u_reassembly.cpp`, `a2u_correlation.cpp`,
`a2u_embedding.cpp`).

Run by the Makefile's install step (`python -m models.ops.build_ext`) after `pip install`; prints one line (what
was built, where, how long it took), or, when the build fails, the tail of the compiler log and a note that the
pure-PyTorch path will be used (exit status 0 unless `--strict`). The library and a small JSON record (torch
version, hash of the sources, build time) go to `models/ops/csrc/build/` (git-ignored);
`models.ops.kernels.fused_cpu` loads that library at import and never compiles anything itself. An up-to-date build
is not redone (`--force` rebuilds).

Needs a C++ compiler (g++) and ninja (the pinned `ninja` wheel puts it into the venv's bin/, which is put on PATH
here). The compile uses `MAX_JOBS` (default 1) ninja jobs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

CSRC = Path(__file__).resolve().parent / "csrc"
#: compiled into one library (one `torch.ops.a2u` namespace): the reassembly ops, the generator's correlation and
#: its GroupNorm-LeakyReLU-product embedding
SOURCES = (CSRC / "a2u_reassembly.cpp", CSRC / "a2u_correlation.cpp", CSRC / "a2u_embedding.cpp")
BUILD_DIR = CSRC / "build"
NAME = "a2u_reassembly_cpu"
LIBRARY = BUILD_DIR / f"{NAME}.so"
RECORD = BUILD_DIR / f"{NAME}.json"
#: x86-64-v3 (AVX2 + FMA) when the building CPU has it; the record lists the CPU flags the library then needs,
#: and the loader refuses it (falls back, with the reason) on a CPU without them.
V3_FLAGS = ("avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "xsave")
LOG = BUILD_DIR / "build.log"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def compile_flags() -> tuple[list[str], list[str]]:
    """(compiler flags, CPU flags the result requires) for this machine."""
    flags = ["-O3", "-Wno-unknown-pragmas"]
    if platform.machine() in ("x86_64", "AMD64") and set(V3_FLAGS) <= cpu_flags():
        return flags + ["-march=x86-64-v3"], list(V3_FLAGS)
    return flags, []


def source_hash() -> str:
    digest = hashlib.sha256()
    for source in SOURCES:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:16]


def read_record() -> dict | None:
    try:
        return json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return None


def stale_reason() -> str | None:
    """Why the built library cannot be used with this torch and source (None when it can)."""
    import torch

    record = read_record()
    if record is None or not LIBRARY.exists():
        return f"not built ({LIBRARY.relative_to(CSRC.parent.parent.parent)} missing)"
    if record.get("torch") != torch.__version__:
        return f"built for torch {record.get('torch')}, running torch {torch.__version__}"
    if record.get("source_hash") != source_hash():
        return "built from older sources (models/ops/csrc/*.cpp changed)"
    missing = sorted(set(record.get("requires_cpu_flags", [])) - cpu_flags())
    if missing:
        return f"built for a CPU with {', '.join(missing)}, which this CPU lacks"
    return None


def build(force: bool = False) -> tuple[bool, str]:
    """Build the library if needed. Returns (ok, one-line message)."""
    import torch

    if not force and stale_reason() is None:
        return True, f"fused CPU ops up to date ({_rel(LIBRARY)})"
    os.environ.setdefault("MAX_JOBS", "1")
    bin_dir = str(Path(sys.executable).parent)   # the venv's ninja (pip wheel), if any
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    RECORD.unlink(missing_ok=True)
    from torch.utils import cpp_extension

    cflags, requires = compile_flags()
    start = time.perf_counter()
    try:
        cpp_extension.load(name=NAME, sources=[str(source) for source in SOURCES], extra_cflags=cflags,
                           build_directory=str(BUILD_DIR), is_python_module=False, verbose=False)
    except Exception as error:   # compiler missing, ninja missing, compile error, ...
        LOG.write_text(str(error))
        return False, str(error)
    seconds = time.perf_counter() - start
    RECORD.write_text(json.dumps({"torch": torch.__version__, "source_hash": source_hash(),
                                  "build_seconds": round(seconds, 1), "cflags": cflags,
                                  "requires_cpu_flags": requires,
                                  "built": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1) + "\n")
    return True, f"built fused CPU ops in {seconds:.1f} s ({_rel(LIBRARY)})"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when the build fails")
    args = parser.parse_args(argv)
    ok, message = build(force=args.force)
    if ok:
        print(message)
        return 0
    tail = "\n".join(message.strip().splitlines()[-25:])
    print(f"{tail}\nWARNING: building the fused CPU ops failed (full log: {_rel(LOG)}); the pure-PyTorch "
          f"reassembly and correlation will run instead (slower). Retry with "
          f"`.venv/bin/python -m models.ops.build_ext`.",
          file=sys.stderr)
    return 1 if args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
