"""The report builds from a results/ tree alone, tells at a glance what the run can say about the paper, traces
every number to a file, names the checkpoint of every matting number, and flags what a figure would hide."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.io import write_image, write_json
from pipeline.core.params import BaseParams
from pipeline.core.seeds import aggregate_seeds
from pipeline.report.build import build_report, traced_cells
from pipeline.report.cells import SourceReader, text_shows_value
from pipeline.report.params import ReportParams
from pipeline.report.render import render_html, render_markdown

BASE, PARAMS = BaseParams(seed=1, profile="smoke"), ReportParams(title="t", qualitative_images=2)
METRICS = ("sad", "mse", "grad", "conn")


def _ms(mean: float, std: float = 0.1) -> dict:
    return {"mean": mean, "std": std}


def _verify_json() -> dict:
    counts = {"ours": 8049003, "official": 8049003, "equal": True}
    return {"checks": {
        "metric_parity": {"n_cases": 6, "max_rel_error": {m: 3e-7 for m in METRICS}, "tolerance": 1e-5, "passed": True,
                          "full_set": {"n_cases": 45, "test": "tests/test_matting/test_metrics.py::x"}},
        "operator_parity": {"max_abs_error": 3.3e-16, "tolerance": 1e-12, "passed": True},
        "gradients": {"up": True, "down": True, "passed": True},
        "parameter_counts": {"network": {"bilinear": counts,
                                         "a2u extra": {"ours": 40232, "official": 40232, "equal": True}},
                             "generator": {"shared C=64": {"ours": 5066, "official": 5066, "equal": True}},
                             "passed": True},
        "onnx_parity": {"max_abs_diff": {"32x48": 2e-7}, "max_abs_diff_worst": 2e-7, "tolerance": 1e-4,
                        "passed": True}}}


#: Per-seed offsets of the fake test SAD (zero mean: the mean over seeds is the `sads` argument).
SEED_OFFSETS = {"bilinear": (0.0, 0.3, -0.3), "a2u": (0.1, 0.2, -0.3)}


def _fake_results(repo: Path, source: str = "synthetic", iters: int = 4, sads: tuple = (20.0, 18.0),
                  constant_pred: bool = False, crop: int = 64, batch: int = 2, n_test: int = 2,
                  seeds: tuple = (0, 1, 2), width: float = 0.25, trivial_factor: float = 2.0) -> None:
    """The per-seed layout: results/train/<v>/seed<s>/, results/eval/<v>/seeds/seed<s>/ and the aggregate."""
    rng = np.random.default_rng(0)
    res = repo / "results"
    for (variant, sad), best in zip((("bilinear", sads[0]), ("a2u", sads[1])), (300, 600)):
        docs = {}
        for index, seed in enumerate(seeds):
            seed_sad = sad + SEED_OFFSETS[variant][index] if len(seeds) > 1 else sad
            train = res / "train" / variant / f"seed{seed}"
            write_json(train / "summary.json",
                       {"variant": variant, "seed": seed, "width": width, "params": 8049003,
                        "complexity": {"input": 512, "gmacs": 52.5}, "iters": iters, "crop": crop,
                        "batch_size": batch, "wall_time_s": 3.0 + seed, "best_iter": best + 100 * index,
                        "final_val": {"sad": seed_sad + 1, "mse": 0.01},
                        "val_curve": {"iters": [100, 200], "sad": [2 * seed_sad, seed_sad + 1]}})
            write_json(train / "run.json", {"stage": "train", "wall_time_s": 3.0,
                                            "machine": {"processor": "x86_64", "cpu_count": 2, "torch_threads": 2}})
            test = {m: _ms(v) for m, v in zip(METRICS, (seed_sad, 0.01, 5.0, 7.0))}
            test["n_images"] = n_test
            test["trivial"] = {"sad": trivial_factor * sads[0], "mse": 0.2, "grad": 9.0, "conn": 29.0}
            docs[seed] = {
                "seed": seed, "sets": {"test": test, "alphamatting": {k: v for k, v in test.items() if k != "trivial"}},
                "sad": seed_sad, "n_images": n_test,
                "checkpoint": {"which": "best", "iter": best + 100 * index,
                               "val": {"sad": seed_sad + 0.5, "mse": 0.02}},
                "tiled_check": {"tile": 128, "sad": {"whole": seed_sad, "tiled": seed_sad + 0.01, "delta": 0.01},
                                **{m: {"delta": 0.0} for m in ("mse", "grad", "conn")},
                                "peak_mem_mb_max": {"whole": 50.0, "tiled": 20.0}}}
            write_json(res / "eval" / variant / "seeds" / f"seed{seed}" / "summary.json", docs[seed])
            for name in ("a", "b"):
                pred = np.zeros((16, 16), np.uint8) if constant_pred else rng.integers(0, 255, (16, 16), dtype=np.uint8)
                write_image(res / "eval" / variant / "seeds" / f"seed{seed}" / "pred" / "test" / f"{name}.png", pred)
            metrics = train / "dvclive" / "plots" / "metrics"
            (metrics / "val").mkdir(parents=True)
            (metrics / "loss.tsv").write_text(f"timestamp\tstep\tloss\n1\t1\t0.5\n2\t2\t{0.4 + 0.01 * index}\n")
            (metrics / "val" / "sad.tsv").write_text(f"step\tsad\n{best + 100 * index}\t{seed_sad + 0.5}\n")
        write_json(res / "eval" / variant / "summary.json", aggregate_seeds(docs, variant))
        write_json(res / "eval" / variant / "run.json", {"stage": "evaluate", "wall_time_s": 2.0,
                                                         "machine": {"processor": "x86_64", "cpu_count": 2}})
    test = repo / "data" / "composed" / "test"
    (test / "list.txt").parent.mkdir(parents=True, exist_ok=True)
    (test / "list.txt").write_text("a\nb\n")
    for name in ("a", "b"):
        write_image(test / "image" / f"{name}.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        write_image(test / "alpha" / f"{name}.png", rng.integers(0, 255, (16, 16), dtype=np.uint8))
        write_image(test / "trimap" / f"{name}.png", rng.choice(np.array([0, 128, 255], np.uint8), (16, 16)))
    block = {m: _ms(1.0, 0.0) for m in ("psnr", "ssim", "mae", "mse")}
    toy = {"protocol": "ours (modelled on the authors' group harness)", "profile": "smoke", "epochs": 2, "seeds": [0],
           "results": {"mnist": {op: {"params": 1000, "best": {**block, "epoch": _ms(2.0, 0.0)},
                                      "last": {**block, "epoch": _ms(2.0, 0.0)}} for op in ("bilinear", "a2u")}}}
    write_json(res / "toy" / "summary.json", toy)
    write_json(res / "compose" / "run.json", {"stage": "compose", "params": {"compose": {"source": source}}})
    write_json(res / "verify" / "verify.json", _verify_json())
    write_json(res / "bench" / "details" / "targets.json",
               {"checks": [{"name": "a2u up / bilinear", "value": 6.5, "limit": "≤ 3.0", "met": False},
                           {"name": "grad s", "value": 0.01, "limit": "≤ 0.3", "met": True}]})
    shapes = [{"shape": {"batch": 1, "channels": 64, "size": s, "where": f"matting/stage{i}"},
               "results": {op: {"up_fwd": {"ratio": r}, "down_fwd": {"ratio": 2 * r}}
                           for op, r in (("bilinear", 1.0), ("a2u", 6.5))}} for i, s in enumerate((32, 64))]
    write_json(res / "bench" / "details" / "ops.json", {"operators": ["bilinear", "a2u"], "shapes": shapes})
    write_json(res / "bench" / "details" / "operators.json",
               {"bilinear": {"down": "2×2 max-pool", "up": "BilinearPair"}, "a2u": {"down": "A2D", "up": "A2UPair"}})


def _build(tmp_path: Path, **kwargs):
    _fake_results(tmp_path, **kwargs)
    fig_dir = tmp_path / "results" / "report"
    fig_dir.mkdir(parents=True, exist_ok=True)
    return build_report(tmp_path, BASE, PARAMS, fig_dir)


@pytest.fixture(scope="module")
def report_repo(tmp_path_factory: pytest.TempPathFactory):
    """One report of the default fake results, shared by the read-only tests (figures take seconds to draw)."""
    root = tmp_path_factory.mktemp("report")
    return root, _build(root)


def test_every_cell_comes_from_a_results_file(report_repo) -> None:
    repo, report = report_repo
    cells = traced_cells(report)
    assert len(cells) > 40
    reader = SourceReader(repo)
    for cell in cells:
        assert cell["source"].startswith("results/"), cell
        node = reader.load(repo / cell["source"])
        for part in cell["key"]:
            node = node[part]
        assert node == cell["value"]
        if "derived" in cell:  # a computed number: every input is in its file, the text shows the result
            for item in cell["derived"]["inputs"]:
                assert reader.node(repo / item["source"], *item["key"]) == item["value"], cell
            assert text_shows_value(cell["text"], cell["derived"]["value"]), cell
        else:
            assert text_shows_value(cell["text"], node), cell


def test_glance_says_a_synthetic_cpu_run_cannot_test_the_claim(report_repo) -> None:
    _, report = report_repo
    claim = report.glance["claim"]
    assert claim["verdict"] == "not tested by this run" and not claim["testable"]
    assert claim["reasons"] == ["data", "training iterations", "training crop", "batch size"]
    rows = {row[0].text: [c.text for c in row[1:]] for row in report.tables["claim"].rows}
    assert rows["training iterations"] == ["180,000", "4", "no"]
    assert rows["test SAD, bilinear → a2u"][:2] == ["37.31 → 32.15 (-13.8%)", "20.00 → 18.00 (-10.0%)"]
    html = render_html(report)
    assert "The paper's claim is not tested by this run." in html and "v-not-tested-by-this-run" in html
    assert "<b>-10.0%</b>" not in html and "**" not in html  # no bold gain, no literal markdown in the HTML


def test_a_run_on_a_shorter_budget_is_labelled_a_cpu_scale_measurement(report_repo) -> None:
    """When its networks beat the trimap-only score, a short-budget run compares operators at its budget only."""
    _, report = report_repo
    smoke = report.glance["claim"]["smoke"]
    assert smoke["label"] == "CPU-scale measurement"
    assert smoke["text"].startswith("The matting networks are trained on a budget unlike the paper's (training "
                                    "iterations, training crop, batch size differ)")
    assert "a2u 18.00, bilinear 20.00" in smoke["text"] and "not at the paper's setting" in smoke["text"]
    html = render_html(report)
    assert "CPU-scale measurement." in html and "Smoke demonstration." not in html


def test_a_run_that_did_not_learn_is_labelled_a_smoke_demonstration(tmp_path: Path) -> None:
    report = _build(tmp_path, sads=(20.0, 19.0), trivial_factor=1.05)  # trimap only 21.0: both within 20%
    smoke = report.glance["claim"]["smoke"]
    assert smoke["label"] == "Smoke demonstration" and "have not learnt to matte" in smoke["text"]
    assert "Smoke demonstration." in render_html(report)


@pytest.mark.parametrize("sads, verdict", [((37.0, 32.0), "reproduced"), ((37.0, 36.9), "not reproduced")])
def test_glance_verdict_on_the_papers_setting(tmp_path: Path, sads: tuple, verdict: str) -> None:
    report = _build(tmp_path, source="comp1k", iters=180000, crop=512, batch=16, n_test=1000, sads=sads)
    assert report.glance["claim"]["testable"] and report.glance["claim"]["verdict"] == verdict
    assert report.glance["claim"]["smoke"] is None  # the paper's budget is no smoke demonstration


def test_verification_results_are_in_the_glance_box(report_repo) -> None:
    _, report = report_repo
    rows = {row[0].text: row for row in report.tables["verification"].rows}
    metric = rows["SAD/MSE/Grad/Conn against the original MATLAB code"]
    assert metric[1].source == "results/verify/verify.json" and metric[1].text.startswith("3.0e-07")
    assert rows["parameters: matting network, bilinear baseline"][1].text == "8,049,003"
    assert {row[-1].text for row in report.tables["verification"].rows} <= {"passed", "equal"}
    assert report.glance["targets"] == {"met": 1, "missed": 1, "not_measured": 0, "total": 2}


def test_every_matting_number_names_its_checkpoint(report_repo) -> None:
    _, report = report_repo
    header = report.tables["matting"].header
    rows = {row[0].text: row for row in report.tables["matting"].rows}
    assert rows["a2u"][header.index("checkpoint (iteration per seed)")].text == "600 / 700 / 800 (best)"
    training = report.tables["matting_training"]
    rows = {row[0].text: row for row in training.rows}
    val = rows["a2u"][training.header.index("val SAD at the checkpoint, per seed")]
    assert val.derived["value"] == pytest.approx([18.6, 18.7, 18.2])  # validation at each seed's checkpoint
    assert val.text == "18.6 / 18.7 / 18.2"
    fall = rows["a2u"][training.header.index("val SAD last ÷ first validation, per seed")]
    assert fall.derived["value"] == pytest.approx([19.1 / 36.2, 19.2 / 36.4, 18.7 / 35.4])  # (s + 1) / 2s
    assert fall.text == "0.53 / 0.53 / 0.53" and fall.source.endswith("summary.json")
    labels = [row[0].text for row in report.tables["paper_vs_reproduced"].rows if "this run" in row[0].text]
    assert labels == ["a2u (this run, best checkpoint, iteration 600 / 700 / 800 for seeds 0, 1, 2)",
                      "bilinear (this run, best checkpoint, iteration 300 / 400 / 500 for seeds 0, 1, 2)"]


def test_paper_and_synthetic_rows_are_labelled_apart(report_repo) -> None:
    _, report = report_repo
    rows = report.tables["paper_vs_reproduced"].rows
    paper = [r for r in rows if "this run" not in r[0].text]
    ours = [r for r in rows if "this run" in r[0].text]
    assert {r[1].text for r in paper} == {"Composition-1k (Adobe, 1000 test images)"}
    assert ours and all("synthetic" in r[1].text for r in ours)
    assert [c.value for c in paper[1][2:6]] == [37.31, 0.0103, 21.38, 35.39]


def test_toy_table_shows_whole_epochs_and_no_duplicate_columns(report_repo) -> None:
    _, report = report_repo
    table = report.tables["toy"]
    assert "PSNR, last epoch" not in table.header  # best == last here: one set of columns
    assert [row[3].text for row in table.rows] == ["2 (best)", "2 (best)"]


def test_constant_predictions_are_flagged(tmp_path: Path) -> None:
    report = _build(tmp_path, constant_pred=True)
    assert "qualitative" in report.figures
    (note,) = report.notes["qualitative"]
    assert note.startswith("4 of 4 predictions shown are constant") and "a2u on a (0)" in note


def test_html_is_self_contained_and_markdown_links_resolve(report_repo) -> None:
    repo, report = report_repo
    html = render_html(report)
    assert "<img" in html and "data:image/png;base64," in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "the HTML must not load anything from the network"
    md_path = repo / "results" / "report.md"
    md = render_markdown(report, md_path)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {Path(link).name for link in links} >= {"training_curves.png", "matting_bars.png", "qualitative.png",
                                                   "bench_ratios.png"}
    for link in links:
        assert (md_path.parent / link).is_file(), link
    assert "Protocol: ours" in md and "Tiled inference" in md and "+0.01" in md
    for text in (md, html, json.dumps(traced_cells(report))):
        assert "../" not in text and "/shared/" not in text, "the report refers to a path outside the repository"


def test_missing_stage_is_reported_not_hidden(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    fig_dir = tmp_path / "results" / "report"
    fig_dir.mkdir()
    report = build_report(tmp_path, BASE, PARAMS, fig_dir)
    md = render_markdown(report, tmp_path / "results" / "report.md")
    assert md.count("not produced by this run") == 3  # verify, toy, bench
    assert report.glance["claim"]["verdict"] == "not tested by this run"
    json.loads(json.dumps(traced_cells(report), default=str))


def test_the_report_shows_only_this_runs_variants(tmp_path: Path) -> None:
    """A variant dropped from train.variants leaves its folders (DVC deletes no old outputs): not this run's."""
    from pipeline.report.params import run_variants
    from pipeline.report.seed_tables import only_variants

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  variants: [bilinear]\n")
    _fake_results(tmp_path)
    fig_dir = tmp_path / "results" / "report"
    fig_dir.mkdir(parents=True)
    with only_variants(run_variants(params)):
        report = build_report(tmp_path, BASE, PARAMS, fig_dir)
    shown = {row[0].text for row in report.tables["matting"].rows}
    assert "bilinear" in shown and "a2u" not in shown
    assert report.glance["claim"]["paired"] is None  # no a2u of this run to compare
    params.write_text("train:\n  variants: [a2u]\n")
    with only_variants(run_variants(params)):
        report = build_report(tmp_path, BASE, PARAMS, fig_dir)
    table = report.tables["matting"]
    (row,) = [row for row in table.rows if row[0].text == "a2u"]
    assert row[table.header.index("Δ SAD vs bilinear [95% CI]")].text.startswith("— (no bilinear seeds")
    assert "bilinear" not in {row[0].text for row in table.rows}
    params.write_text("train:\n  variants: bilinear\n")
    with pytest.raises(ValueError, match="train.variants must be a list"):
        run_variants(params)

