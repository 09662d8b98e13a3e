"""Assemble the report from `results/` (and the composed test images for the qualitative grid).

Sections: paper vs reproduced (matting), the matting table per variant, evaluation-only sets, the toy table
("protocol: ours"), operator speed, figures, provenance. Every number goes through `SourceReader`, so
`results/report/cells.json` lists each printed cell with the file and key it came from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipeline.core.params import BaseParams
from pipeline.report import plots
from pipeline.report.cells import Cell, SourceReader, Table, fmt_number
from pipeline.report.params import ReportParams

MATTING_METRICS = ("sad", "mse", "grad", "conn")
TOY_METRICS = ("psnr", "ssim", "mae", "mse")
PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


@dataclass
class Report:
    """Everything the templates render."""

    title: str
    profile: str
    dataset: str
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    stage_times: dict[str, float] = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def _variants(results: Path, kind: str) -> list[str]:
    folder = results / kind
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def dataset_label(results: Path, reader: SourceReader) -> str:
    """Which data the matting numbers were measured on, from the compose stage's own record."""
    run = results / "compose" / "run.json"
    source = "unknown (no compose run.json)"
    if run.is_file():
        source = reader.load(run).get("params", {}).get("compose", {}).get("source", source)
    names = {"synthetic": "procedural synthetic set (ours)", "comp1k": "Composition-1k",
             "d646": "Distinctions-646", "folder": "user folder"}
    return names.get(source, str(source))


def paper_vs_reproduced(results: Path, reader: SourceReader, report: Report, paper_json: Path) -> Table:
    """Paper rows (Composition-1k) and this run's rows, each labelled with its dataset; never mixed in a column."""
    paper = reader.load(paper_json)
    table = Table("paper_vs_reproduced", ["upsampler", "measured on", "SAD", "MSE", "Grad", "Conn", "source"],
                  caption="Paper rows: " + paper["source_note"].strip())
    for row in paper["rows"]:
        cells = [reader.get(paper_json, "rows", paper["rows"].index(row), m) for m in MATTING_METRICS]
        table.add(row["label"], paper["dataset"], *cells, row["source"])
    for variant in _variants(results, "eval"):
        metrics = results / "eval" / variant / "summary.json"
        if not metrics.is_file():
            continue
        cells = [reader.mean_std(metrics, "sets", "test", m) for m in MATTING_METRICS]
        table.add(f"{variant} (this run)", f"{report.dataset}, test split, profile {report.profile}", *cells,
                  reader.rel(metrics))
    return table


def matting_table(results: Path, reader: SourceReader) -> Table:
    """Per trained variant: params, FLOPs, iterations, wall time, validation and test metrics, CPU latency."""
    table = Table("matting", ["variant", "params", "GMACs (input)", "iterations", "train time (s)", "val SAD",
                              "test SAD", "test MSE", "test Grad", "test Conn", "images", "bench fwd 512² (s)"],
                  caption="Test metrics: mean ± std over the test images of one training seed (MATLAB semantics; "
                          "SAD, Grad, Conn /1000).")
    networks = results / "bench" / "details" / "networks.json"
    for variant in sorted(set(_variants(results, "train")) | set(_variants(results, "eval"))):
        summary = results / "train" / variant / "summary.json"
        metrics = results / "eval" / variant / "summary.json"
        row: list[Cell | str] = [variant]
        if summary.is_file():
            row += [reader.get(summary, "params"), _gmacs_cell(reader, summary),
                    reader.get(summary, "iters"), reader.get(summary, "wall_time_s", fmt=lambda v: f"{v:.1f}"),
                    reader.get(summary, "final_val", "sad")]
        else:
            row += ["(not trained)"] * 5
        if metrics.is_file():
            row += [reader.mean_std(metrics, "sets", "test", m) for m in MATTING_METRICS]
            row.append(reader.get(metrics, "sets", "test", "n_images"))
        else:
            row += ["(not evaluated)"] * 5
        row.append(_network_latency(reader, networks, variant, 512))
        table.add(*row)
    return table


def _gmacs_cell(reader: SourceReader, summary: Path) -> Cell:
    """'52.56 @512²': MACs of the trained network at the input size the train stage measured."""
    size = (reader.load(summary).get("complexity") or {}).get("input")
    return reader.get(summary, "complexity", "gmacs", fmt=lambda v: f"{v:.3f} @{size}²")


def _network_latency(reader: SourceReader, networks: Path, variant: str, size: int) -> Cell:
    """Median forward time (ms) of one network variant at size² from the bench stage's networks.json."""
    if not networks.is_file():
        return Cell("(no bench)")
    for i, entry in enumerate(reader.load(networks).get("sizes", [])):
        if entry.get("size") == size and variant in entry.get("variants", {}):
            return reader.get(networks, "sizes", i, "variants", variant, "median_s", fmt=lambda v: f"{v:.3f}")
    return Cell("–")


def extra_sets_table(results: Path, reader: SourceReader) -> Table | None:
    """Evaluation-only sets (e.g. alphamatting.com) per variant, when configured."""
    table = Table("extra_sets", ["variant", "set", "SAD", "MSE", "Grad", "Conn", "images"])
    for variant in _variants(results, "eval"):
        metrics = results / "eval" / variant / "summary.json"
        if not metrics.is_file():
            continue
        sets = reader.load(metrics).get("sets", {})
        for name in sorted(k for k in sets if k != "test"):
            table.add(variant, name, *[reader.mean_std(metrics, "sets", name, m) for m in MATTING_METRICS],
                      reader.get(metrics, "sets", name, "n_images"))
    return table if table.rows else None


def tiling_table(results: Path, reader: SourceReader) -> Table | None:
    """Effect of tiled inference on the test-split metrics and on peak memory, per variant."""
    table = Table("tiling", ["variant", "tile", "SAD whole", "SAD tiled", "Δ SAD", "Δ MSE", "Δ Grad", "Δ Conn",
                             "peak MiB whole", "peak MiB tiled"],
                  caption="Tiled inference (overlapping tiles blended with linear ramps) against whole-image "
                          "inference on the same test images and checkpoint; Δ = tiled − whole.")
    for variant in _variants(results, "eval"):
        path = results / "eval" / variant / "summary.json"
        if not path.is_file() or "tiled_check" not in reader.load(path):
            continue
        delta = lambda m: reader.get(path, "tiled_check", m, "delta", fmt=lambda v: f"{v:+.4g}")  # noqa: E731
        table.add(variant, reader.get(path, "tiled_check", "tile"), reader.get(path, "tiled_check", "sad", "whole"),
                  reader.get(path, "tiled_check", "sad", "tiled"), *[delta(m) for m in MATTING_METRICS],
                  reader.get(path, "tiled_check", "peak_mem_mb_max", "whole", fmt=lambda v: fmt_number(v, 3)),
                  reader.get(path, "tiled_check", "peak_mem_mb_max", "tiled", fmt=lambda v: fmt_number(v, 3)))
    return table if table.rows else None


def toy_table(results: Path, reader: SourceReader) -> Table | None:
    """The toy reconstruction table: best-epoch metrics (mean ± std over seeds) and last-epoch PSNR."""
    path = results / "toy" / "summary.json"
    if not path.is_file():
        return None
    data = reader.load(path)
    table = Table("toy", ["dataset", "operator", "params", "PSNR (best)", "SSIM (best)", "MAE (best)",
                          "MSE (best)", "best epoch", "PSNR (last)"],
                  caption=f"Protocol: {data.get('protocol', 'ours')}; profile {data.get('profile')}, "
                          f"{data.get('epochs')} epochs, seeds {data.get('seeds')}. Not the paper's table "
                          "(which is not public).")
    for dataset in data.get("unavailable") or {}:
        table.add(dataset, "(not run: dataset not available on this machine; see results/toy/table.md)",
                  *[""] * 7)
    for dataset, per_op in data.get("results", {}).items():
        for op in per_op:
            table.add(dataset, op, reader.get(path, "results", dataset, op, "params"),
                      *[reader.mean_std(path, "results", dataset, op, "best", m) for m in TOY_METRICS],
                      reader.mean_std(path, "results", dataset, op, "best", "epoch", digits=3),
                      reader.mean_std(path, "results", dataset, op, "last", "psnr"))
    return table


def bench_table(results: Path, reader: SourceReader) -> Table | None:
    """The performance targets of the bench stage: measured value, limit, met or not."""
    path = results / "bench" / "details" / "targets.json"
    if not path.is_file():
        return None
    table = Table("bench", ["target", "measured", "limit", "met"],
                  caption="Measured by the bench stage (interleaved medians in one process; ratios against "
                          "F.interpolate(bilinear) for upsamplers and 2×2 average pooling for downsamplers). "
                          "Full tables: results/bench/table.md.")
    for i, check in enumerate(reader.load(path).get("checks", [])):
        met = {True: "yes", False: "**no**", None: "n/a"}[check.get("met")]
        table.add(check.get("name", "?"), reader.get(path, "checks", i, "value", fmt=lambda v: fmt_number(v, 3)),
                  check.get("limit", ""), met)
    return table if table.rows else None


def stage_times(results: Path, reader: SourceReader) -> dict[str, float]:
    """Wall time of every stage that wrote a run.json."""
    out = {}
    for run in sorted(results.glob("**/run.json")):
        data = reader.load(run)
        if "wall_time_s" in data:
            out[reader.rel(run.parent)] = float(data["wall_time_s"])
    return out


def curves_figure(results: Path, fig_dir: Path) -> Path | None:
    """Training and validation curves of every variant from its DVCLive folder."""
    series: dict[str, dict[str, Path]] = {}
    for variant in _variants(results, "train"):
        metric_dir = results / "train" / variant / "dvclive" / "plots" / "metrics"
        for tsv in sorted(metric_dir.glob("**/*.tsv")):
            name = str(tsv.relative_to(metric_dir).with_suffix(""))
            if any(key in name for key in ("loss", "sad", "mse")) and "lr" not in name:
                series.setdefault(variant, {})[name] = tsv
    return plots.training_curves(series, fig_dir / "training_curves.png") if series else None


def bars_figure(results: Path, reader: SourceReader, fig_dir: Path) -> Path | None:
    """Test metrics per matting variant as bars with image-level std."""
    values: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, float]] = {}
    for variant in _variants(results, "eval"):
        metrics = results / "eval" / variant / "summary.json"
        if metrics.is_file():
            test = reader.load(metrics).get("sets", {}).get("test", {})
            for m in MATTING_METRICS:
                if m in test:
                    values.setdefault(m.upper(), {})[variant] = float(test[m]["mean"])
                    errors.setdefault(m.upper(), {})[variant] = float(test[m].get("std", 0.0))
    return plots.metric_bars(values, fig_dir / "matting_bars.png", "test metrics per upsampler (lower is better)",
                             errors) if values else None


def qualitative_figure(results: Path, data_dir: Path, fig_dir: Path, n_images: int) -> Path | None:
    """Image, trimap, ground truth, each variant's prediction and its |error| on the first `n_images` test images."""
    from pipeline.core.io import read_alpha, read_rgb, read_trimap

    test = data_dir / "test"
    list_file = test / "list.txt"
    if not list_file.is_file():
        return None
    names = [n.strip() for n in list_file.read_text().splitlines() if n.strip()][:n_images]
    variants = [v for v in _variants(results, "eval") if (results / "eval" / v / "pred" / "test").is_dir()]
    columns = ["image", "trimap", "ground truth"] + [c for v in variants for c in (v, f"|err| {v}")]
    rows = []
    for name in names:
        gt = read_alpha(test / "alpha" / f"{name}.png")
        row = {"image": read_rgb(test / "image" / f"{name}.png"), "trimap": read_trimap(test / "trimap" / f"{name}.png"),
               "ground truth": gt}
        for v in variants:
            pred = read_alpha(results / "eval" / v / "pred" / "test" / f"{name}.png")
            row[v] = pred
            row[f"|err| {v}"] = np.abs(pred.astype(np.float32) - gt.astype(np.float32)) / 255.0
        rows.append(row)
    return plots.qualitative_grid(rows, columns, fig_dir / "qualitative.png")


def write_paper_numbers_json(out_dir: Path) -> Path:
    """Copy the paper numbers into the report folder as JSON so their cells are traced like every other."""
    from pipeline.core.io import write_json

    return write_json(out_dir / "paper_numbers.json", yaml.safe_load(PAPER_NUMBERS.read_text()))


def build_report(repo: Path, base: BaseParams, cfg: ReportParams, fig_dir: Path, final_dir: Path | None = None,
                 data_dir: Path | None = None) -> Report:
    """Collect every table and figure from `repo/results`; `fig_dir` (the report's own folder, possibly a
    temporary one that becomes `final_dir`) receives the PNGs and the paper JSON; the qualitative grid reads
    the composed test images of `data_dir` (default `repo/data/composed`)."""
    from pipeline.report.provenance import collect_provenance

    results = repo / "results"
    reader = SourceReader(repo, {fig_dir: final_dir} if final_dir else None)
    paper_json = write_paper_numbers_json(fig_dir)
    report = Report(title=cfg.title, profile=base.profile, dataset=dataset_label(results, reader))
    report.tables["paper_vs_reproduced"] = paper_vs_reproduced(results, reader, report, paper_json)
    report.tables["matting"] = matting_table(results, reader)
    for name, builder in (("extra_sets", extra_sets_table), ("tiling", tiling_table), ("toy", toy_table),
                          ("bench", bench_table)):
        table = builder(results, reader)
        if table is not None:
            report.tables[name] = table
        else:
            report.note(name, "not produced by this run (its stage has no output in results/)")
    n_images = cfg.qualitative_images
    data_dir = repo / "data" / "composed" if data_dir is None else data_dir
    for key, fig in (("training_curves", curves_figure(results, fig_dir)),
                     ("matting_bars", bars_figure(results, reader, fig_dir)),
                     ("qualitative", qualitative_figure(results, data_dir, fig_dir, n_images))):
        if fig is not None:
            report.figures[key] = fig
    for key, src in (("toy_grid", results / "toy" / "grid.png"), ("bench_ratios", results / "bench" / "details" / "ratios.png"),
                     ("contact_sheet", results / "compose" / "contact_sheet.png")):
        if src.is_file():
            report.figures[key] = src
    report.stage_times = stage_times(results, reader)
    report.provenance = collect_provenance(repo, base)
    return report


def traced_cells(report: Report) -> list[dict[str, Any]]:
    """All cells with a source, for results/report/cells.json."""
    return [cell for table in report.tables.values() for cell in table.traced_cells()]


def dump_cells(report: Report) -> str:
    return json.dumps(traced_cells(report), indent=1, default=str)
