"""The verify stage's FADE/SAPA/DySample check: it passes on this code, fails when an identity, a gradient or a
published count breaks, and the report shows its rows."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.core.io import write_json
from pipeline.report.build import verification_table
from pipeline.report.cells import SourceReader
from pipeline.verify import successors


@pytest.fixture(scope="module")
def result() -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # tiny tensors: gradcheck is faster on one thread
    try:
        return successors.successor_checks(0, onnx_check=lambda seed: {n: 1e-7 for n in successors.OPERATORS})
    finally:
        torch.set_num_threads(threads)


def test_every_successor_passes_every_check(result: dict) -> None:
    assert set(result["identities"]) == set(successors.OPERATORS) == set(result["gradients"])
    assert max(result["identities"].values()) <= successors.IDENTITY_ATOL
    assert all(result["gradients"].values())
    counts = result["parameter_counts"]
    assert {n: counts[n]["ours"] for n in ("fade", "fade-lite", "dysample")} == \
        {"fade": 124_008, "fade-lite": 27_216, "dysample": 16_512}
    assert counts["sapa"] == {"ours": 68_096, "official": None, "equal": None}
    assert result["passed"] is True


def test_a_broken_identity_fails(monkeypatch) -> None:
    real = successors._box
    monkeypatch.setattr(successors, "_box", lambda x, k=5: real(x, 3))   # a 3×3 box is not what SAPA computes
    assert max(successors.identities(0)[n] for n in ("fade", "sapa", "sapa-g")) > 1e-3
    assert successors.identities(0)["dysample"] <= successors.IDENTITY_ATOL


def test_a_different_published_count_fails(tmp_path: Path) -> None:
    reference = tmp_path / "counts.yaml"
    reference.write_text("successors:\n  extra: {fade: 124009, dysample: 16512}\n")
    rows = successors.parameter_counts(reference)
    assert rows["fade"]["equal"] is False and rows["dysample"]["equal"] is True and rows["sapa"]["equal"] is None


def test_onnx_beyond_tolerance_fails(result: dict, monkeypatch) -> None:
    monkeypatch.setattr(successors, "identities", lambda seed: result["identities"])
    monkeypatch.setattr(successors, "gradients", lambda seed: result["gradients"])
    monkeypatch.setattr(successors, "parameter_counts", lambda: result["parameter_counts"])
    bad = successors.successor_checks(0, onnx_check=lambda seed: {"dysample": 1e-3})
    assert bad["passed"] is False


def test_report_rows(tmp_path: Path, result: dict) -> None:
    write_json(tmp_path / "results" / "verify" / "verify.json", {"checks": {"successors": result}})
    rows = {row[0].text: row for row in verification_table(tmp_path / "results", SourceReader(tmp_path)).rows}
    identity = next(r for t, r in rows.items() if t.startswith("FADE/SAPA/DySample with zero parameters"))
    assert identity[-1].text == "passed" and identity[1].source == "results/verify/verify.json"
    assert rows["parameters added to the matting network by fade"][2].text == "124,008 (official code)"
    assert rows["parameters added to the matting network by sapa"][-1].text == "ours only"
    assert rows["FADE/SAPA/DySample backward passes (gradcheck, float64)"][1].text == "6 of 6 operators"
