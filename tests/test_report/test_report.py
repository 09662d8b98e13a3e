"""The report builds from a results/ tree alone, embeds its figures, and traces every number to a file."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.io import write_image, write_json
from pipeline.core.params import BaseParams
from pipeline.report.build import build_report, traced_cells
from pipeline.report.params import ReportParams
from pipeline.report.cells import SourceReader
from pipeline.report.render import render_html, render_markdown
from pipeline.report.cells import text_shows_value

BASE, PARAMS = BaseParams(seed=1, profile="smoke"), ReportParams(title="t", qualitative_images=2)



def _ms(mean: float, std: float = 0.1) -> dict:
    return {"mean": mean, "std": std}


def _fake_results(repo: Path) -> None:
    rng = np.random.default_rng(0)
    res = repo / "results"
    for variant, sad in (("bilinear", 20.0), ("a2u", 18.0)):
        write_json(res / "train" / variant / "summary.json",
                   {"variant": variant, "params": 8049003, "complexity": {"input": 512, "gmacs": 52.5}, "iters": 4, "wall_time_s": 3.0,
                    "final_val": {"sad": sad + 1, "mse": 0.01}})
        test = {m: _ms(v) for m, v in zip(("sad", "mse", "grad", "conn"), (sad, 0.01, 5.0, 7.0))}
        test["n_images"] = 2
        metrics = {"sets": {"test": test, "alphamatting": dict(test)}, "sad": sad,
                   "tiled_check": {"tile": 128, "sad": {"whole": sad, "tiled": sad + 0.01, "delta": 0.01},
                                   **{m: {"delta": 0.0} for m in ("mse", "grad", "conn")},
                                   "peak_mem_mb_max": {"whole": 50.0, "tiled": 20.0}}}
        write_json(res / "eval" / variant / "metrics.json", metrics)
        for name in ("a", "b"):
            write_image(res / "eval" / variant / "pred" / "test" / f"{name}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
    test = repo / "data" / "composed" / "test"
    (test / "list.txt").parent.mkdir(parents=True, exist_ok=True)
    (test / "list.txt").write_text("a\nb\n")
    for name in ("a", "b"):
        write_image(test / "image" / f"{name}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        write_image(test / "alpha" / f"{name}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
        write_image(test / "trimap" / f"{name}.png", rng.choice(np.array([0, 128, 255], np.uint8), (16, 16)))
    toy = {"protocol": "ours (modelled on the authors' group harness)", "profile": "smoke", "epochs": 1, "seeds": [0],
           "results": {"mnist": {op: {"params": 1000, "best": {m: _ms(1.0) for m in ("psnr", "ssim", "mae", "mse", "epoch")},
                                      "last": {m: _ms(1.0) for m in ("psnr", "ssim", "mae", "mse", "epoch")}}
                                 for op in ("bilinear", "a2u")}}}
    write_json(res / "toy" / "metrics.json", toy)
    write_json(res / "compose" / "run.json", {"stage": "compose", "params": {"compose": {"source": "synthetic"}}})
    (res / "train" / "a2u" / "dvclive" / "plots" / "metrics" / "train").mkdir(parents=True)
    (res / "train" / "a2u" / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").write_text(
        "timestamp\tstep\tloss\n1\t1\t0.5\n2\t2\t0.4\n")


@pytest.fixture()
def report_repo(tmp_path: Path):
    _fake_results(tmp_path)
    fig_dir = tmp_path / "results" / "report"
    fig_dir.mkdir(parents=True)
    return tmp_path, build_report(tmp_path, BASE, PARAMS, fig_dir)


def test_every_cell_comes_from_a_results_file(report_repo) -> None:
    repo, report = report_repo
    cells = traced_cells(report)
    assert len(cells) > 30
    reader = SourceReader(repo)
    for cell in cells:
        assert cell["source"].startswith("results/"), cell
        node = reader.load(repo / cell["source"])
        for part in cell["key"]:
            node = node[part]
        assert node == cell["value"]
        assert text_shows_value(cell["text"], node), cell


def test_paper_and_synthetic_rows_are_labelled_apart(report_repo) -> None:
    _, report = report_repo
    rows = report.tables["paper_vs_reproduced"].rows
    paper = [r for r in rows if "this run" not in r[0].text]
    ours = [r for r in rows if "this run" in r[0].text]
    assert {r[1].text for r in paper} == {"Composition-1k (Adobe, 1000 test images)"}
    assert ours and all("synthetic" in r[1].text for r in ours)
    assert [c.value for c in paper[1][2:6]] == [37.31, 0.0103, 21.38, 35.39]


def test_html_is_self_contained_and_markdown_links_resolve(report_repo) -> None:
    repo, report = report_repo
    html = render_html(report)
    assert "<img" in html and "data:image/png;base64," in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "the HTML must not load anything from the network"
    md_path = repo / "results" / "report.md"
    md = render_markdown(report, md_path)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links, "figures expected in the markdown"
    for link in links:
        assert (md_path.parent / link).is_file(), link
    assert "protocol: ours" in md.lower() or "Protocol: ours" in md
    assert "Tiled inference" in md and "+0.01" in md
    assert "A2U over the bilinear baseline" in md and "13.8%" in md and "10.0%" in md


def test_missing_stage_is_reported_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    fig_dir = tmp_path / "results" / "report"
    fig_dir.mkdir()
    report = build_report(tmp_path, BASE, PARAMS, fig_dir)
    md = render_markdown(report, tmp_path / "results" / "report.md")
    assert "not produced by this run" in md
    json.loads(json.dumps(traced_cells(report), default=str))
