"""The report and the README read the matting results per training seed: mean ± std over seeds, each seed's SAD,
the paired difference to bilinear with its interval (recomputed here from the per-seed numbers), the seed spread
and a thread-count drift in the glance box, the network width, the host of the runs, and the section on where
this reproduction and the paper disagree (toy ablations against bilinear and a2u, sentences from the numbers)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.io import write_json
from pipeline.core.params import BaseParams
from pipeline.core.stats import mean_std, paired_difference
from pipeline.core.seeds import aggregate_seeds
from pipeline.report import plots
from pipeline.report.build import Report, build_report, claim_table, curves_figure, traced_cells, \
    write_paper_numbers_json
from pipeline.report.cells import SourceReader, text_shows_value
from pipeline.report.params import ReportParams
from pipeline.report.readme import matting_lines
from pipeline.report.render import render_html, render_markdown
from pipeline.report.seed_tables import (ABLATIONS, disagreement_section, matting_hosts, matting_table,
                                         seed_glance, softmax_sigmoid_bounds, thread_drift, train_summaries,
                                         drift_sentence)

METRICS = ("sad", "mse", "grad", "conn")
#: Per-seed test SADs of the fake runs (bilinear is the baseline; a2u is worse by about 1.7, tightly paired).
SADS = {"bilinear": [5.98, 6.40, 5.70], "a2u": [7.72, 8.01, 7.50]}
#: One evaluation of one seed, shaped like the evaluate stage's per-seed summary.json (16 test images).
SEED_DOC = {
    "checkpoint": {"iter": 300, "requested": "auto", "which": "best",
                   "selected_by": "best at iteration 300 (lowest val/sad on val_source 'composed')",
                   "val": {"mse": 0.21, "sad": 9.5}},
    "n_failed": 0, "n_images": 16, "overlap": None, "stride": 16, "tile": None,
    "sets": {"test": {"conn": {"mean": 6.9, "std": 5.6}, "grad": {"mean": 10.8, "std": 7.0},
                      "mse": {"mean": 0.27, "std": 0.086}, "sad": {"mean": 7.7, "std": 4.6},
                      "failures": [], "n_failed": 0, "n_images": 16, "n_listed": 16,
                      "trivial": {"conn": 5.42, "grad": 11.63, "mse": 0.2926, "sad": 7.874,
                                  "what": "trimap only: unknown region predicted as background (alpha 0)"}}},
    "tiled_check": {"tile": 128, "overlap": 32, "set": "test", "n_images": 16,
                    "sad": {"whole": 7.7, "tiled": 6.7, "delta": -1.0}, "mse": {"delta": -0.07},
                    "grad": {"delta": -2.1}, "conn": {"delta": -0.004},
                    "peak_mem_mb_max": {"whole": 128.9, "tiled": 5.9}},
}
MACHINE = {"processor": "x86_64", "cpu_model": "Test CPU 9000", "cpu_count": 2, "torch_threads": 2}


def _seed_doc(variant: str, seed: int, sad: float, index: int) -> dict:
    doc = copy.deepcopy(SEED_DOC)
    test = doc["sets"]["test"]
    scale = sad / test["sad"]["mean"]
    for metric in METRICS:
        test[metric]["mean"] *= scale
    test["sad"]["mean"] = sad
    doc.update(variant=variant, seed=seed, sad=sad)
    doc["checkpoint"]["iter"] = 300 * (index + 1)
    doc["checkpoint"]["val"]["sad"] = sad + 1.5
    return doc


def _tree(root: Path, sads: dict[str, list[float]] | None = None, seeds: dict[str, list[int]] | None = None,
          width: float | None = 0.25) -> Path:
    """results/ of the per-seed layout: train/<v>/seed<s>/ (summary, run.json, DVCLive curves), eval/<v>/seeds/
    seed<s>/summary.json and the aggregate eval/<v>/summary.json (`aggregate_seeds`)."""
    results = root / "results"
    for variant, values in (sads or SADS).items():
        seed_list = (seeds or {}).get(variant, list(range(len(values))))
        docs = {}
        for index, (seed, sad) in enumerate(zip(seed_list, values)):
            docs[seed] = _seed_doc(variant, seed, sad, index)
            write_json(results / "eval" / variant / "seeds" / f"seed{seed}" / "summary.json", docs[seed])
            train = results / "train" / variant / f"seed{seed}"
            summary = {"variant": variant, "seed": seed, "params": 8049003, "iters": 900, "crop": 64,
                       "batch_size": 4, "wall_time_s": 100.0 + seed, "complexity": {"input": 64, "gmacs": 0.8}}
            if width is not None:
                summary["width"] = width
            write_json(train / "summary.json", summary)
            write_json(train / "run.json", {"stage": "train", "wall_time_s": 100.0, "machine": MACHINE})
            metrics = train / "dvclive" / "plots" / "metrics"
            (metrics / "val").mkdir(parents=True)
            (metrics / "loss.tsv").write_text("step\tloss\n1\t0.5\n2\t0.4\n")
            (metrics / "val" / "sad.tsv").write_text(
                "".join(["step\tsad\n"] + [f"{it}\t{sad + 2 - it / 900}\n" for it in (300, 600, 900)]))
        write_json(results / "eval" / variant / "summary.json", aggregate_seeds(docs, variant))
        write_json(results / "eval" / variant / "run.json", {"stage": "evaluate", "machine": MACHINE})
    return results


def _toy_row(per_seed: list[float], baseline: list[float] | None) -> dict:
    """A toy summary row as the toy stage writes it (best PSNR per seed, paired difference to the baseline)."""
    row = {"params": 1000, "per_seed": {str(s): v for s, v in enumerate(per_seed)},
           "best": {"psnr": mean_std(per_seed), "epoch": {"mean": 4.0, "std": 0.0}},
           "last": {"psnr": mean_std(per_seed), "epoch": {"mean": 4.0, "std": 0.0}}}
    if baseline is not None:
        diff = paired_difference(per_seed, baseline)
        low, high = diff["interval"]
        star = " *" if diff["significant"] else ""
        row["paired"] = {**diff, "baseline": "bilinear", "metric": "psnr",
                         "text": f"{diff['mean']:+.2f} [{low:+.2f}, {high:+.2f}]{star}"}
    return row


TOY = {"bilinear": [18.96, 18.89, 19.03], "a2u": [16.72, 16.88, 16.57],
       # well above a2u, not distinguishable from bilinear
       "a2u-softmax": [18.90, 18.95, 18.99],
       # a2u ± noise: no effect shown
       "a2u-sumnorm": [16.20, 17.40, 16.60],
       # above bilinear
       "a2u-s1": [19.85, 19.90, 19.87]}


def _toy(results: Path, operators: tuple[str, ...] = tuple(TOY)) -> dict:
    rows = {op: _toy_row(TOY[op], None if op == "bilinear" else TOY["bilinear"]) for op in operators}
    toy = {"baseline": "bilinear", "confidence": 0.95, "seeds": [0, 1, 2], "epochs": 4, "profile": "extended",
           "protocol": "ours", "results": {"fashion-mnist": rows}}
    write_json(results / "toy" / "summary.json", toy)
    return toy


def _rows(table) -> dict:
    return {row[0].text: row for row in table.rows}


def _col(table, name: str) -> int:
    return list(table.header).index(name)


# ----------------------------------------------------------------------------------------------- matting table
def test_matting_table_numbers_are_over_seeds_and_paired(tmp_path: Path) -> None:
    results = _tree(tmp_path)
    reader = SourceReader(tmp_path)
    table = matting_table(results, reader)
    rows = _rows(table)
    for variant, values in SADS.items():
        sad = rows[variant][_col(table, "test SAD")]
        expected = mean_std(values)
        assert sad.value == pytest.approx(expected["mean"])
        assert sad.text == f"{expected['mean']:.3f} ± {expected['std']:.2g}"
        per_seed = rows[variant][_col(table, "SAD per seed")]
        assert per_seed.text == " / ".join(f"{v:.4g}" for v in values) and text_shows_value(per_seed.text, values)
    diff = paired_difference(SADS["a2u"], SADS["bilinear"])
    cell = rows["a2u"][_col(table, "Δ SAD vs bilinear [95% CI]")]
    low, high = diff["interval"]
    assert diff["significant"]
    assert cell.text == f"{diff['mean']:+.2f} [{low:+.2f}, {high:+.2f}]; significant"
    assert cell.derived["value"] == pytest.approx(diff["mean"])
    inputs = sorted(item["value"] for item in cell.derived["inputs"])
    assert inputs == pytest.approx(sorted(SADS["a2u"] + SADS["bilinear"]))
    assert rows["bilinear"][_col(table, "Δ SAD vs bilinear [95% CI]")].text == "— (baseline)"
    # the trimap-only reference and each variant's SAD as a fraction of it
    assert [c.text for c in rows["trimap only (no model)"][4:8]] == ["7.874", "0.2926", "11.63", "5.420"]
    fraction = rows["a2u"][_col(table, "SAD ÷ trimap-only")]
    assert fraction.derived["value"] == pytest.approx(np.mean(SADS["a2u"]) / 7.874)
    assert fraction.text == f"{np.mean(SADS['a2u']) / 7.874:.3f}"
    # how the test images enter, and the network width, are in the caption and the table
    assert "each seed's number is the mean over the 16 test images" in table.caption
    assert "seeds are paired" in table.caption.lower() and "the test images are fixed" in table.caption
    assert "\"mini\" network" in table.caption and "width 0.25" in table.caption
    assert rows["a2u"][_col(table, "network width")].text == "0.25 (mini)"
    assert rows["a2u"][_col(table, "checkpoint (iteration per seed)")].text == "300 / 600 / 900 (best)"


def test_a_difference_that_the_interval_does_not_support_is_not_significant(tmp_path: Path) -> None:
    sads = {"bilinear": [6.0, 6.4, 5.7], "a2u": [7.5, 5.9, 6.0]}
    results = _tree(tmp_path, sads)
    table = matting_table(results, SourceReader(tmp_path))
    diff = paired_difference(sads["a2u"], sads["bilinear"])
    assert diff["interval"][0] < 0 < diff["interval"][1]
    cell = _rows(table)["a2u"][_col(table, "Δ SAD vs bilinear [95% CI]")]
    assert cell.text.endswith("; not significant") and cell.text.startswith(f"{diff['mean']:+.2f} [")
    glance = seed_glance(results, SourceReader(tmp_path), tmp_path)
    assert glance["significant"] is False and "not significant: the interval includes 0" in glance["difference"]


def test_a_variant_with_one_seed_shows_no_interval(tmp_path: Path) -> None:
    results = _tree(tmp_path, {"bilinear": SADS["bilinear"], "a2u": [7.72]}, seeds={"a2u": [0]})
    reader = SourceReader(tmp_path)
    table = matting_table(results, reader)
    a2u = _rows(table)["a2u"]
    assert a2u[_col(table, "Δ SAD vs bilinear [95% CI]")].text == f"{7.72 - 5.98:+.2f} (one seed: no interval)"
    assert a2u[_col(table, "test SAD")].text == "7.720"  # no "± 0" for one seed
    assert "The variants were not all trained with the same seeds" in table.caption
    glance = seed_glance(results, reader, tmp_path)
    assert glance["significant"] is None and "one seed: no interval, not tested" in glance["difference"]


def test_training_summaries_are_read_per_seed_in_numeric_order(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for seed in (10, 2, 0):
        write_json(results / "train" / "a2u" / f"seed{seed}" / "summary.json", {"seed": seed, "width": 0.25})
    (results / "train" / "a2u" / "seedling").mkdir()  # not a seed folder
    assert list(train_summaries(results, SourceReader(tmp_path), "a2u")) == [0, 2, 10]


def test_full_width_network_is_labelled_full(tmp_path: Path) -> None:
    results = _tree(tmp_path, width=1.0)
    table = matting_table(results, SourceReader(tmp_path))
    assert _rows(table)["a2u"][_col(table, "network width")].text == "1 (full)"
    assert "paper's full network (width 1.0)" in table.caption and "mini" not in table.caption


def test_claim_needs_a_significant_paired_gain(tmp_path: Path) -> None:
    """On the paper's setting, a 13% mean gain whose paired interval includes 0 is not a reproduction."""
    results = _tree(tmp_path, {"bilinear": [37.0, 37.5, 36.5], "a2u": [26.0, 37.6, 32.6]})
    write_json(results / "compose" / "run.json", {"params": {"compose": {"source": "comp1k"}}})
    for path in results.glob("train/*/seed*/summary.json"):
        write_json(path, {**json.loads(path.read_text()), "iters": 180000, "crop": 512, "batch_size": 16})
    for path in results.glob("eval/*/summary.json"):
        doc = json.loads(path.read_text())
        doc["sets"]["test"]["n_images"] = 1000
        write_json(path, doc)
    (tmp_path / "out").mkdir()
    reader = SourceReader(tmp_path)
    table, claim = claim_table(results, reader, write_paper_numbers_json(tmp_path / "out"))
    assert claim["testable"] and claim["gains"]["ours"] > 0.5 * claim["gains"]["paper"]
    assert not claim["paired"]["significant"] and claim["verdict"] == "not reproduced"
    assert _rows(table)["training seeds per variant"][2].text == "seeds 0, 1, 2 (3 per variant)"


# ----------------------------------------------------------------------------------------------- glance
def test_glance_gives_the_seed_spread_and_the_thread_drift(tmp_path: Path) -> None:
    results = _tree(tmp_path)
    reader = SourceReader(tmp_path)
    glance = seed_glance(results, reader, tmp_path)
    assert glance["drift"] is None  # no measurements file: nothing about drift
    assert glance["spread"] == {v: pytest.approx(mean_std(s)["std"]) for v, s in SADS.items()}
    assert glance["significant"] is True and glance["difference"].startswith("a2u's test SAD is 1.72 higher (worse)")
    write_json(tmp_path / "docs" / "measurements" / "matting_drift.json", {
        "what": "a2u seed 0 trained at 1 and 2 threads", "commit": "abc123", "host": "Test CPU 9000",
        "runs": [{"variant": "a2u", "seed": 0, "threads": 1, "test_sad": 7.70},
                 {"variant": "a2u", "seed": 0, "threads": 2, "test_sad": 7.76},
                 {"variant": "bilinear", "seed": 1, "threads": 2, "test_sad": 6.4}]})  # one thread count: no drift
    drift = thread_drift(tmp_path / "docs" / "measurements" / "matting_drift.json")
    (pair,) = drift["pairs"]
    assert pair["drift"] == pytest.approx(0.06) and pair["threads"] == [1, 2]
    assert pair["paths"] == ["1 thread", "2 threads"]
    text = seed_glance(results, reader, tmp_path)["drift"]
    std = mean_std(SADS["a2u"])["std"]
    assert "a2u seed 0: |SAD(1 thread) − SAD(2 threads)| = 0.06" in text
    assert f"seed spread (std over seeds) of {std:.3g}: {0.06 / std:.2g}× the spread" in text
    assert "abc123" in text and "Test CPU 9000" in text


def test_drift_tells_a_forced_isa_apart_from_the_default_path(tmp_path: Path) -> None:
    """An AVX2 run at 2 threads is its own code path, not averaged with the default 2-thread run."""
    path = tmp_path / "drift.json"
    write_json(path, {"runs": [{"variant": "a2u", "seed": 0, "threads": 2, "code_path": "default", "test_sad": 1.0},
                               {"variant": "a2u", "seed": 0, "threads": 1, "code_path": "default", "test_sad": 1.1},
                               {"variant": "a2u", "seed": 0, "threads": 2, "code_path": "avx2", "test_sad": 1.4}]})
    (pair,) = thread_drift(path)["pairs"]
    assert pair["drift"] == pytest.approx(0.4) and pair["paths"] == ["2 threads", "2 threads, AVX2"]
    assert pair["sad"] == {"1 thread": 1.1, "2 threads": 1.0, "2 threads, AVX2": 1.4}
    text = drift_sentence(thread_drift(path), {"a2u": 0.2})
    assert "|SAD(2 threads) − SAD(2 threads, AVX2)| = 0.4 (1 thread 1.100, 2 threads 1.000, 2 threads, AVX2 1.400)" \
        in text and "2× the spread" in text


def test_hosts_of_the_matting_runs(tmp_path: Path) -> None:
    results = _tree(tmp_path)
    (row,) = matting_hosts(results, SourceReader(tmp_path))
    assert "Test CPU 9000" in row["host"]
    assert row["runs"] == "train a2u seeds 0, 1, 2; train bilinear seeds 0, 1, 2; evaluate a2u, bilinear"


def test_learning_curves_draw_one_thin_line_per_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _tree(tmp_path)
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    assert curves_figure(results, SourceReader(tmp_path), tmp_path) is not None
    (fig,) = drawn
    val = next(ax for ax in fig.axes if ax.get_title() == "val/sad")
    curves = [line for line in val.get_lines() if len(line.get_xdata()) == 3]
    assert len(curves) == 6 and {line.get_linewidth() for line in curves} == {0.9}
    assert len({line.get_color() for line in curves}) == 2  # one colour per variant
    rings = [line for line in val.get_lines() if line.get_marker() == "o"]
    assert len(rings) == 6  # each seed's evaluated checkpoint (300, 600, 900)


# ----------------------------------------------------------------------------------------------- disagreement
def _disagree(tmp_path: Path, operators: tuple[str, ...] = tuple(TOY)) -> Report:
    results = _tree(tmp_path)
    _toy(results, operators)
    (tmp_path / "out").mkdir()
    report = Report(title="t", profile="extended", dataset="synthetic")
    report.glance["claim"] = {"testable": False, "reasons": ["data"]}
    disagreement_section(results, SourceReader(tmp_path), report, write_paper_numbers_json(tmp_path / "out"))
    return report


def test_disagree_section_sets_ablations_against_bilinear_and_a2u(tmp_path: Path) -> None:
    report = _disagree(tmp_path)
    table = report.tables["disagree_ablations"]
    rows = {row[1].text: row for row in table.rows}
    assert set(rows) == {"a2u", *ABLATIONS}
    for operator in ABLATIONS:
        vs_a2u = paired_difference(TOY[operator], TOY["a2u"])
        vs_bil = paired_difference(TOY[operator], TOY["bilinear"])
        cell = rows[operator][_col(table, "Δ PSNR vs a2u [95% CI]")]
        assert cell.derived["value"] == pytest.approx(vs_a2u["mean"])
        assert cell.text.startswith(f"{vs_a2u['mean']:+.2f} [{vs_a2u['interval'][0]:+.2f}, "
                                    f"{vs_a2u['interval'][1]:+.2f}]")
        assert rows[operator][_col(table, "Δ PSNR vs bilinear [95% CI]")].text.startswith(f"{vs_bil['mean']:+.2f} [")
    notes = report.notes["disagree"]
    low, high = softmax_sigmoid_bounds(3)
    assert (low, high) == pytest.approx((1 / (1 + 8 * np.e), np.e / (np.e + 8)))
    assert "[0.044, 0.254]" in notes[0]
    sentences = {op: next(n for n in notes[1:] if n.startswith(f"fashion-mnist: {op} ")) for op in ABLATIONS}
    gap = paired_difference(TOY["a2u"], TOY["bilinear"])
    softmax = paired_difference(TOY["a2u-softmax"], TOY["a2u"])
    assert f"a2u-softmax is {softmax['mean']:.2f} dB above a2u" in sentences["a2u-softmax"]
    assert "; significant)" in sentences["a2u-softmax"]
    assert f"accounts for {softmax['mean'] / abs(gap['mean']):.0%}" in sentences["a2u-softmax"]
    assert "not distinguishable from bilinear" in sentences["a2u-softmax"]
    assert "not significant: the interval includes 0" in sentences["a2u-sumnorm"]
    assert "show no effect" in sentences["a2u-sumnorm"] and "accounts for" not in sentences["a2u-sumnorm"]
    assert "above bilinear" in sentences["a2u-s1"] and "more than the whole" in sentences["a2u-s1"]
    # the matting comparison: the paper's relative gain against this run's paired result
    matting = report.tables["disagree"].rows[0]
    assert matting[1].text.startswith("37.31 → 32.15 (-13.8%)")
    diff = paired_difference(SADS["a2u"], SADS["bilinear"])
    assert matting[2].derived["value"] == pytest.approx(diff["mean"])
    assert "neither confirms nor contradicts" in matting[3].text


def test_absent_ablations_name_the_profile_that_runs_them(tmp_path: Path) -> None:
    report = _disagree(tmp_path, ("bilinear", "a2u"))
    assert "disagree_ablations" not in report.tables
    (note,) = [n for n in report.notes["disagree"] if "not in this run's toy study" in n]
    assert note.startswith("a2u-softmax, a2u-sumnorm, a2u-s1 are not in this run's toy study: the extended profile")
    toy_row = report.tables["disagree"].rows[1]
    gap = paired_difference(TOY["a2u"], TOY["bilinear"])
    assert toy_row[2].value == pytest.approx(gap["mean"]) and toy_row[2].text.startswith(f"{gap['mean']:+.2f} [")
    assert "a2u is 2.24 dB below bilinear" in toy_row[3].text and "; significant)" in toy_row[3].text


# ----------------------------------------------------------------------------------------------- whole report
@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("seeds")
    results = _tree(root)
    _toy(results)
    write_json(root / "docs" / "measurements" / "matting_drift.json", {
        "what": "one seed at two thread counts", "commit": "abc123", "host": "Test CPU 9000",
        "runs": [{"variant": "a2u", "seed": 0, "threads": 1, "test_sad": 7.70},
                 {"variant": "a2u", "seed": 0, "threads": 2, "test_sad": 7.76}]})
    fig_dir = results / "report"
    fig_dir.mkdir(parents=True)
    report = build_report(root, BaseParams(seed=1, profile="cpu"), ReportParams(title="t", qualitative_images=0),
                          fig_dir)
    return root, report


def test_report_renders_the_seed_parts(full_report) -> None:
    root, report = full_report
    md = render_markdown(report, root / "results" / "report.md")
    html = render_html(report)
    for text in (md, html):
        assert "Matting over 3 training seeds (0, 1, 2):" in text
        assert "a2u's test SAD is 1.72 higher (worse) than bilinear's, paired over seeds 0, 1, 2" in text
        assert "Seed spread of the test SAD (std over seeds): a2u" in text
        assert "|SAD(1 thread) − SAD(2 threads)| = 0.06" in text
        assert "Where this reproduction and the paper disagree" in text
        assert "a2u-softmax is" in text and "[0.044, 0.254]" in text
        assert "matting runs on Test CPU 9000" in text
        assert "\"mini\" network" in text
    assert "SAD per seed" in md and "Training, per seed" in md


def test_every_cell_of_the_seed_report_is_traced(full_report) -> None:
    root, report = full_report
    cells = traced_cells(report)
    derived = [c for c in cells if "derived" in c]
    assert {c["table"] for c in derived} >= {"matting", "matting_training", "disagree", "disagree_ablations"}
    reader = SourceReader(root)
    for cell in cells:
        assert cell["source"].startswith("results/"), cell
        assert reader.node(root / cell["source"], *cell["key"]) == cell["value"], cell
        if "derived" in cell:
            assert not isinstance(cell["value"], (int, float)), cell  # a container, never a bare number
            for item in cell["derived"]["inputs"]:
                assert reader.node(root / item["source"], *item["key"]) == item["value"], cell
            assert text_shows_value(cell["text"], cell["derived"]["value"]), cell
        else:
            assert text_shows_value(cell["text"], cell["value"]), cell


# ----------------------------------------------------------------------------------------------- README
def test_readme_matting_lines_are_over_seeds(tmp_path: Path) -> None:
    results = _tree(tmp_path)
    lines = matting_lines(results)
    text = "\n".join(lines)
    diff = paired_difference(SADS["a2u"], SADS["bilinear"])
    low, high = diff["interval"]
    a2u = mean_std(SADS["a2u"])
    assert (f"| a2u | best at iteration 300 / 600 / 900 | {a2u['mean']:.4g} ± {a2u['std']:.2g} |") in text
    assert f"| 7.72 / 8.01 / 7.5 | {diff['mean']:+.2f} [{low:+.2f}, {high:+.2f}] significant |" in text
    assert "| bilinear |" in text and "| — (baseline) |" in text
    assert "| trimap only (no model) | — | 7.874 | 0.2926 | 11.63 | 5.42 | — | — |" in text
    assert "each seed's number is the mean over the 16 test images" in text
    assert f"- a2u's test SAD is {diff['mean']:.2f} higher (worse) than bilinear's, paired over seeds 0, 1, 2" in text
