"""End to end: a copy of the repository runs `dvc repro` with the smoke profile, produces a report whose links
resolve and whose every number comes from a file in results/, and a second `dvc repro` has nothing to do."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.toy.idx import write_idx
from pipeline.report.cells import text_shows_value

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]



def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc


def _tiny_idx(folder: Path, seed: int) -> None:
    """Four IDX files of 28×28 blobs, enough for the smoke budget (200 train + 100 val, 100 test)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    for prefix, count in (("train", 400), ("t10k", 120)):
        cy, cx, r = rng.uniform(8, 20, count), rng.uniform(8, 20, count), rng.uniform(3, 8, count)
        images = ((np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]) < r[:, None, None]) * 255)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images.astype(np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count).astype(np.uint8))


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if rel.split("/")[0] in ("results", "data", "work_dirs"):
            continue  # generated outputs: the copy must build them itself
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["base"]["profile"] = "smoke"
    params["train"]["seeds"] = [0, 1]  # two seeds: the summaries over seeds and the paired interval are exercised
    for name, seed in (("fashion-mnist", 1), ("mnist", 2)):
        _tiny_idx(work / "idx" / name, seed)
    params["toy"]["data_dirs"] = {"fashion-mnist": "idx/fashion-mnist", "mnist": "idx/mnist"}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke"], work)
    proc = _run(["dvc", "repro"], work)
    (work / "repro_console.txt").write_text(proc.stdout + proc.stderr)
    return work


def test_report_exists_and_links_resolve(smoke_repo: Path) -> None:
    results = smoke_repo / "results"
    md = (results / "report.md").read_text()
    html = (results / "report.html").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 4, links
    for link in links:
        assert (results / link).is_file(), f"report.md links to a missing file: {link}"
    assert "data:image/png;base64," in html and not re.search(r'(src|href)="(https?:)?//', html)
    for variant in ("bilinear", "a2u"):
        assert f"{variant} (this run, best checkpoint, iteration " in md
        summary = json.loads((results / "eval" / variant / "summary.json").read_text())
        assert summary["sets"]["test"]["n_images"] == summary["sets"]["test"]["n_listed"] > 0


def test_every_report_cell_comes_from_results(smoke_repo: Path) -> None:
    cells = json.loads((smoke_repo / "results" / "report" / "cells.json").read_text())
    assert len(cells) > 40
    for cell in cells:
        assert cell["source"].startswith("results/"), cell
        node = json.loads((smoke_repo / cell["source"]).read_text())
        for part in cell["key"]:
            node = node[part]
        assert node == cell["value"], cell
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            assert text_shows_value(cell["text"], node), cell


def test_second_repro_is_a_no_op(smoke_repo: Path) -> None:
    out = _run(["dvc", "repro"], smoke_repo).stdout
    assert "Running stage" not in out, out
    assert "up to date" in out.lower() or "didn't change" in out.lower(), out


def test_console_is_short_and_names_each_stage(smoke_repo: Path) -> None:
    """MMEngine's dumps go to the run logs; the console has a few lines per stage (measured: about 130)."""
    console = (smoke_repo / "repro_console.txt").read_text()
    lines = console.splitlines()
    assert len(lines) < 200, f"{len(lines)} console lines"
    for marker in ("System environment", "Hooks will be executed", "paramwise_options", "Config:"):
        assert marker not in console, marker
    for stage in ("compose", "toy", "train@a2u-0", "train@a2u-1", "evaluate@a2u", "bench", "verify", "report"):
        assert re.search(rf"^\d\d:\d\d:\d\d {re.escape(stage)}: done in .+ -> ", console, re.M), stage
    assert re.search(r"toy: toy run 1/\d+: ", console)
    logs = list((smoke_repo / "results" / "train" / "a2u" / "seed0").glob("train_log.txt"))
    assert logs and "System environment" in logs[0].read_text(), "the full MMEngine log is kept in the file"


def test_metrics_are_few_flat_scalars_and_fit_120_columns(smoke_repo: Path) -> None:
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], smoke_repo).stdout)
    (files,) = [rev["data"] for rev in shown.values()]  # one revision: the workspace
    assert not [f for f in files if "dvclive" in f], "DVCLive's per-run metrics are not DVC metrics"
    for path, content in files.items():
        values = content["data"]
        flat = {k: v for k, v in values.items() if not isinstance(v, dict)}
        nested = [v for v in values.values() if isinstance(v, dict)]
        assert all(isinstance(v, (int, float)) for v in flat.values()), (path, values)
        assert all(isinstance(x, (int, float)) for d in nested for x in d.values()), (path, values)
        assert len(values) <= 4, (path, values)
    table = _run(["dvc", "metrics", "show"], smoke_repo).stdout
    assert max(len(line) for line in table.splitlines()) <= 120, table
