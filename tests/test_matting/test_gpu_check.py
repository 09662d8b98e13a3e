"""tools/gpu_check.py in `--quick` mode on the CPU (what the lead runs in full on a GPU): every section runs, the
parity holds (A2U's successors included), both variants train through the paper config, the successors'
upsamplers are timed, nothing of `pipeline`, DVC or DVCLive is imported,
and a section that overruns its time guard is cut and recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "gpu_check.py"), str(out), "--quick",
                           "--device", "cpu"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "parity: a2u pair (down+up): fp32 error" in proc.stdout and "] train: a2u (fp32)" in proc.stdout
    data = json.loads((out / "gpu_check.json").read_text())
    statuses = {name: section["status"] for name, section in data["sections"].items()}
    assert statuses == {"env": "ok", "parity": "ok", "ops": "ok", "train": "ok", "train_amp": "skipped",
                        "successors": "ok"}
    successors = ("fade", "fade-lite", "sapa", "sapa-g", "dysample", "dysample-plus")
    checks = data["sections"]["parity"]["checks"]
    assert data["sections"]["parity"]["all_fp32_ok"] and len(checks) == 4 + len(successors)
    assert [c["module"] for c in checks[4:]] == [f"{name} pair (down+up)" for name in successors]
    timed = data["sections"]["successors"]["rows"]
    assert [r["operator"] for r in timed] == ["bilinear ×2", "a2u up"] + [f"{name} up" for name in successors]
    assert all(r["fwd"] > 0 and r["fwd+bwd"] > 0 and r["fwd+bwd ratio vs bilinear"] > 0 for r in timed)
    rows = data["sections"]["train"]["rows"]
    assert [r["variant"] for r in rows] == ["bilinear", "a2u"] and all(r["iterations"] == 3 for r in rows)
    assert all(r["iterations_per_s"] > 0 and r["projected_hours_180k"] > 0 for r in rows)
    assert not {"pipeline", "dvc", "dvclive", "stages"} & set(data["imported_top_level_modules"])
    markdown = (out / "gpu_check.md").read_text()
    assert "## train: ok" in markdown and "| a2u | off (float32, as published) | 32 | 2 | 3 |" in markdown
    assert "## successors: ok" in markdown and "| tiny | fade up |" in markdown
    assert data["sections"]["train"]["a2u_time_vs_bilinear"] > 0


def test_a_slow_section_is_cut_by_its_time_guard(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tools import gpu_check

    report = gpu_check.Report(tmp_path, quick=True)
    began = time.monotonic()
    gpu_check.run_section(report, "slow", 0.5, gpu_check.elapsed() + 60, lambda result: time.sleep(10))
    assert time.monotonic() - began < 5
    assert report.data["sections"]["slow"]["status"] == "timeout"
    assert json.loads((tmp_path / "gpu_check.json").read_text())["sections"]["slow"]["status"] == "timeout"
