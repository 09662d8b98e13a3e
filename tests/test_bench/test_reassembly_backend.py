"""The bench records which reassembly backend ran, and times the pure-PyTorch kernels beside the fused C++ op
(forward and forward+backward, same run) at the matting shapes of the reassembly section."""
from __future__ import annotations

import json

import pytest

from models.ops.kernels import fused_cpu
from pipeline.bench.params import BenchParams
from pipeline.bench.reassembly import EAGER_NAMES, FUSED_NAMES, backend_label, bench_reassembly, reassembly_backend
from pipeline.bench.run import run_operator_bench
from pipeline.bench.shapes import OpShape
from pipeline.bench.tables import fused_vs_eager_table, render_markdown
from pipeline.core.io import write_json
from pipeline.report.build import bench_table
from pipeline.report.cells import SourceReader

needs_fused = pytest.mark.skipif(not fused_cpu.available(),
                                 reason=f"fused CPU reassembly not built: {fused_cpu.unavailable_reason()}")
SHAPE = OpShape(1, 8, 16, "matting32/stage1")


@needs_fused
def test_reassembly_times_pure_pytorch_beside_the_fused_op() -> None:
    item = json.loads(json.dumps(bench_reassembly(SHAPE, repeats=2)))
    assert item["backend"] == "fused-cpp"
    for direction in ("up", "down"):
        entries = item[direction]
        assert {FUSED_NAMES[direction], EAGER_NAMES[direction]} <= set(entries)
        assert entries[EAGER_NAMES[direction]]["max_abs_diff_vs_unfold"] < 1e-5
        assert entries[FUSED_NAMES[direction]]["max_abs_diff_vs_unfold"] < 1e-5
        per = item["fused_vs_eager"][direction]
        assert set(per) == {"fwd", "fwdbwd"}
        assert per["fwd"]["fused_median_s"] == entries[FUSED_NAMES[direction]]["median_s"]
        assert per["fwd"]["eager_median_s"] == entries[EAGER_NAMES[direction]]["median_s"]
        for entry in per.values():
            assert entry["fused_median_s"] > 0 and entry["eager_median_s"] > 0
            assert entry["speedup"] == pytest.approx(entry["eager_median_s"] / entry["fused_median_s"])
    table = fused_vs_eager_table([item])
    assert "A2U up (a2u_upsample)" in table and "forward+backward" in table and "N1 C8 16²" in table


def test_forced_eager_backend_is_recorded_with_its_reason(monkeypatch) -> None:
    monkeypatch.setenv(fused_cpu.ENV_VAR, "0")
    info = reassembly_backend("cpu")
    assert info["backend"] == "eager" and info["reason"]
    if fused_cpu.available():
        assert fused_cpu.ENV_VAR in info["reason"]
    item = bench_reassembly(SHAPE, repeats=1)
    assert item["backend"] == "eager" and "fused_vs_eager" not in item
    assert EAGER_NAMES["up"] not in item["up"]
    assert backend_label(info).startswith("pure PyTorch (eager): ")
    cuda = reassembly_backend("cuda")
    assert cuda["backend"] == "eager" and "CPU-only" in cuda["reason"]


@needs_fused
def test_operator_bench_records_the_backend_in_ops_tables_and_report(tmp_path) -> None:
    """A cut-down smoke run (two pairs, one 32² matting input): the backend in ops.json, the table captions
    and targets.json's caption in the report; the speed-up table at the reassembly shapes."""
    cfg = BenchParams(operators=("bilinear", "a2u"), repeats=2, batch_sizes=(1,), op_matting_sizes=(32,),
                      op_include_toy=False, op_max_elements=64 * 16 * 16, op_time_budget_s=30,
                      reassembly_time_budget_s=10)
    ops = run_operator_bench(cfg, 0, "cpu")
    assert ops["reassembly_backend"] == {"device": "cpu", "backend": "fused-cpp", "fused_built": True,
                                         "reason": None}
    assert ops["reassembly"] and all(item["fused_vs_eager"] for item in ops["reassembly"])
    text = render_markdown(ops, None, None, {"checks": []}, "header")
    assert "A2U/A2D reassembly in these tables: fused C++ op (fused-cpp)." in text
    assert "### Fused C++ op vs pure PyTorch" in text and "pure PyTorch ms" in text
    write_json(tmp_path / "results" / "bench" / "details" / "targets.json",
               {"checks": [{"name": "t", "value": 1.0, "limit": "≤ 2", "met": True}],
                "reassembly_backend": ops["reassembly_backend"]})
    table = bench_table(tmp_path / "results", SourceReader(tmp_path))
    assert "A2U/A2D reassembly backend: fused C++ op (fused-cpp)." in table.caption
