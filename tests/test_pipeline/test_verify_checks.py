"""The verify stage's reassembly checks: the CPU backend it reports, fused-vs-pure-PyTorch parity, and the
report's verification rows built from verify.json."""
from __future__ import annotations

from pathlib import Path

import pytest

from models.ops.kernels import fused_cpu
from pipeline.core.io import write_json
from pipeline.report.build import verification_table
from pipeline.report.cells import SourceReader, text_shows_value
from pipeline.verify import checks

SMALL = {"batch": 1, "channels": 8, "size": 12}
needs_fused = pytest.mark.skipif(not fused_cpu.available(),
                                 reason=f"fused CPU reassembly not built: {fused_cpu.unavailable_reason()}")


@needs_fused
def test_fused_parity_reports_the_backend_and_passes() -> None:
    result = checks.fused_parity(0, SMALL)
    assert result["backend"] == "fused-cpp" and result["fused_built"] and result["reason"] is None
    assert result["passed"] is True and result["tolerance"] == checks.FUSED_RTOL == 1e-5
    for op in ("up", "down", "correlation", "embedding"):
        assert set(result[op]) == {"output", "grad_x", "grad_kernels"}
        assert all(0 <= v <= 1e-5 for v in result[op].values())
    assert result["max_rel_error"] == max(v for op in ("up", "down", "correlation", "embedding") for v in result[op].values())
    assert result["shape"]["up"] == "1x8x6x6 -> 12x12, s=3" and result["shape"]["down"] == "1x8x12x12 -> 6x6, k=6"


@needs_fused
def test_fused_parity_still_measured_when_the_run_forces_eager(monkeypatch) -> None:
    monkeypatch.setenv(fused_cpu.ENV_VAR, "0")
    result = checks.fused_parity(0, SMALL)
    assert result["backend"] == "eager" and fused_cpu.ENV_VAR in result["reason"]
    assert result["passed"] is True


def test_fused_parity_not_run_where_the_op_is_missing(monkeypatch) -> None:
    monkeypatch.setitem(fused_cpu._state, "loaded", False)
    monkeypatch.setitem(fused_cpu._state, "reason", "not built (test)")
    result = checks.fused_parity(0, SMALL)
    assert result["backend"] == "eager" and result["reason"] == "not built (test)"
    assert result["passed"] is None and "not built (test)" in result["skipped"]
    assert checks.gradients(0).keys() >= {"up", "down"} and "up_fused" not in checks.gradients(0)


def test_pure_pytorch_paths_are_checked_as_such(monkeypatch) -> None:
    """operator_parity's blocked/autograd paths run the pure-PyTorch kernels; the fused op is its own path."""
    seen = []
    real = fused_cpu.use_fused
    monkeypatch.setattr(fused_cpu, "use_fused", lambda x: seen.append(real(x)) or seen[-1])
    result = checks.operator_parity(0)
    assert seen and not any(seen)   # every K.reassemble_up / K.a2d_downsample call took the pure-PyTorch path
    assert result["passed"] is True
    paths = {"blocked", "autograd", "plain"} | ({"fused"} if fused_cpu.available() else set())
    assert all(set(per) == paths for op in ("up", "down") for per in result[op].values())
    assert result["fused"] == fused_cpu.available()


def _table(tmp_path: Path, fused_parity: dict):
    write_json(tmp_path / "results" / "verify" / "verify.json", {"checks": {
        "operator_parity": {"max_abs_error": 3.3e-16, "tolerance": 1e-12, "fused": True, "passed": True},
        "gradients": {"up": True, "down": True, "up_fused": True, "down_fused": True, "passed": True},
        "fused_parity": fused_parity}})
    table = verification_table(tmp_path / "results", SourceReader(tmp_path))
    return {row[0].text: row for row in table.rows}


def test_verification_table_shows_the_backend_and_the_parity(tmp_path: Path) -> None:
    rows = _table(tmp_path, {"backend": "fused-cpp", "fused_built": True, "reason": None, "tolerance": 1e-5,
                             "shape": {"batch": 2, "channels": 64, "size": 64}, "max_rel_error": 4.1e-7,
                             "passed": True})
    backend = rows["reassembly backend of eager CPU calls"]
    assert backend[1].text == "fused C++ op (fused-cpp)" and backend[-1].text == "fused-cpp"
    parity = rows["fused C++ ops against pure PyTorch (float32, output and gradients)"]
    assert parity[1].source == "results/verify/verify.json" and text_shows_value(parity[1].text, 4.1e-7)
    assert "N = 2, C = 64, R = 64" in parity[1].text and parity[2].text == "1.0e-05" and parity[3].text == "passed"
    assert "fused C++" in rows[next(r for r in rows if r.startswith("A2U/A2D reassembly"))][1].text
    assert "pure PyTorch and fused C++" in rows[next(r for r in rows if r.startswith("backward"))][1].text


def test_verification_table_says_why_eager(tmp_path: Path) -> None:
    rows = _table(tmp_path, {"backend": "eager", "fused_built": False, "reason": "not built (test)",
                             "passed": None, "skipped": "fused CPU op not built: not built (test)"})
    backend = rows["reassembly backend of eager CPU calls"]
    assert backend[1].text == "pure PyTorch (eager): not built (test)" and backend[-1].text == "eager"
    parity = rows["fused C++ ops against pure PyTorch (float32, output and gradients)"]
    assert parity[-1].text == "not run" and "not built (test)" in parity[1].text
