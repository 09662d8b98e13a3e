"""`machine_info()` tells hosts apart (CPU model, SIMD flags, torch's math libraries) and `host_label()` names them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core import runinfo
from pipeline.core.runinfo import cpu_info, host_label, machine_info, math_env

CPUINFO_X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14  96-Core Processor
microcode\t: 0xa10113e
flags\t\t: fpu sse sse2 ssse3 pni fma avx avx2 f16c bmi1 bmi2 avx512f avx512_vnni avx_vnni amx_tile aes

processor\t: 1
vendor_id\t: SomethingElse
model name\t: not the first processor
"""


def test_machine_info_keeps_the_old_keys_and_adds_the_host_ones():
    info = machine_info()
    for key, kind in (("platform", str), ("processor", str), ("cpu_count", int), ("torch_threads", int),
                      ("python", str), ("math_env", dict)):
        assert isinstance(info[key], kind), key
    for key in ("cpu_model", "cpu_vendor", "microcode", "torch_cpu_capability", "mkl_version", "onednn_version"):
        assert key in info and (info[key] is None or isinstance(info[key], str)), key
    for key in ("cpu_flags", "torch_parallel_info"):
        value = info[key]
        assert value is None or (isinstance(value, list) and all(isinstance(v, str) and v for v in value)), key
    if info["cpu_flags"] is not None:
        assert info["cpu_flags"] == sorted(info["cpu_flags"])
        assert all(f.startswith(runinfo.SIMD_FLAG_PREFIXES) for f in info["cpu_flags"])
    assert info["torch_parallel_info"] and all(line == line.strip() for line in info["torch_parallel_info"])
    assert isinstance(info["torch_cpu_capability"], str) and info["torch_cpu_capability"]
    json.dumps(info)                                                   # run.json must be able to hold it


def test_cpuinfo_is_parsed_from_the_first_processor_with_only_simd_flags(tmp_path: Path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO_X86)
    info = cpu_info(path)
    assert info["cpu_model"] == "AMD EPYC 9R14 96-Core Processor" and info["cpu_vendor"] == "AuthenticAMD"
    assert info["microcode"] == "0xa10113e"
    assert info["cpu_flags"] == ["amx_tile", "avx", "avx2", "avx512_vnni", "avx512f", "avx_vnni", "bmi1", "bmi2",
                                 "f16c", "fma", "sse", "sse2", "ssse3"]


def test_without_proc_cpuinfo_missing_values_are_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(runinfo.platform, "processor", lambda: "")
    info = cpu_info(tmp_path / "absent")
    assert info == {"cpu_model": None, "cpu_vendor": None, "cpu_flags": None, "microcode": None}
    monkeypatch.setattr(runinfo.platform, "processor", lambda: "arm")
    assert cpu_info(tmp_path / "absent")["cpu_model"] == "arm"         # macOS: platform.processor() instead


def test_math_library_versions_are_found_in_torchs_build_config(monkeypatch: pytest.MonkeyPatch):
    import torch

    config = ("PyTorch built with:\n  - GCC 13.3\n"
              "  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64\n"
              "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)\n  - LAPACK is enabled (usually provided by MKL)\n"
              "  - Build settings: BLAS_INFO=mkl, TORCH_VERSION=2.13.0, USE_MKL=ON, USE_MKLDNN=ON,\n")
    monkeypatch.setattr(torch.__config__, "show", lambda: config)
    info = runinfo.torch_math_info()
    assert info["mkl_version"].startswith("Intel(R) oneAPI Math Kernel Library Version 2024.2")
    assert info["onednn_version"] == "Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)"
    bare = "PyTorch built with:\n  - Build settings: USE_MKL=OFF, X=1.2\n"
    monkeypatch.setattr(torch.__config__, "show", lambda: bare)
    info = runinfo.torch_math_info()
    assert info["mkl_version"] is None and info["onednn_version"] is None


def test_math_env_records_the_math_libraries_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("DNNL_VERBOSE", "0")
    monkeypatch.setenv("NOT_A_MATH_VAR", "x")
    env = machine_info()["math_env"]
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["OMP_NUM_THREADS"] == "1" and env["DNNL_VERBOSE"] == "0"
    assert "NOT_A_MATH_VAR" not in env and list(env) == sorted(env)
    assert math_env({"KMP_AFFINITY": "compact", "ATEN_CPU_CAPABILITY": "avx2", "OPENBLAS_X": "1", "ONEDNN_Y": "2",
                     "PATH": "/bin"}) == {"ATEN_CPU_CAPABILITY": "avx2", "KMP_AFFINITY": "compact", "ONEDNN_Y": "2",
                                          "OPENBLAS_X": "1"}


def test_host_label():
    info = {"cpu_model": "AMD EPYC 9R14", "cpu_flags": ["avx", "avx2", "avx512f", "sse2"],
            "torch_cpu_capability": "AVX512", "torch_threads": 2}
    assert host_label(info) == "AMD EPYC 9R14 (avx512), torch CPU capability AVX512, 2 threads"
    assert host_label({}) == "unknown CPU"
    assert host_label({"processor": "arm", "cpu_model": None, "cpu_flags": None, "torch_threads": 1}) == "arm, 1 thread"
    assert host_label({"cpu_model": "X", "cpu_flags": ["amx_tile", "avx2"], "cuda_device": "NVIDIA H100"}) == \
        "X (avx2, amx), NVIDIA H100"
    assert isinstance(host_label(machine_info()), str)
