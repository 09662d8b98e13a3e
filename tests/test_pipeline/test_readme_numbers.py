"""The README quotes only numbers regenerated from the committed results (pipeline.report.readme)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.report.readme import BEGIN, END, render_section, replace_section

REPO = Path(__file__).resolve().parents[2]


def _committed(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", pattern], cwd=REPO, capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []


def test_the_readme_results_section_matches_the_committed_results() -> None:
    if not _committed("results/eval/*/summary.json"):
        pytest.skip("no results are committed yet: they are committed from a full `make repro` of the final commit")
    readme = (REPO / "README.md").read_text()
    assert replace_section(readme, render_section(REPO / "results")) == readme, \
        "README's results section is stale: run `make readme` (after `make repro`) and commit"


def test_the_section_is_rendered_from_the_results_files(tmp_path: Path) -> None:
    test = {m: {"mean": v, "std": 0.1} for m, v in zip(("sad", "mse", "grad", "conn"), (5.5, 0.1, 6.0, 5.0))}
    test["trivial"] = {"sad": 9.0, "mse": 0.3, "grad": 8.0, "conn": 9.5}
    test["n_images"] = 16
    (tmp_path / "eval" / "a2u").mkdir(parents=True)
    (tmp_path / "eval" / "a2u" / "summary.json").write_text(json.dumps(
        {"sets": {"test": test}, "checkpoint": {"which": "best", "iter": 300}}))
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "ratios").mkdir(parents=True)
    (tmp_path / "bench" / "ratios" / "toy_step.json").write_text(json.dumps({"a2u_x": 2.345}))
    section = render_section(tmp_path)
    assert "| a2u | best at iteration 300 | 5.5 | 0.1 | 6 | 5 |" in section
    assert "| trimap only (no model) | — | 9 | 0.3 | 8 | 9.5 |" in section
    assert "| toy train step, batch 20 | 2.35× |" in section
    readme = f"intro\n{BEGIN}\nold numbers\n{END}\noutro\n"
    assert replace_section(readme, section) == f"intro\n{BEGIN}\n{section}{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_section("no markers", section)
