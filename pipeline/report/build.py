"""Assemble the report from `results/` (and the composed test images for the qualitative grid).

Sections, in order: *at a glance* (what this run can and cannot say about the paper's claim, whether the
A2U-vs-bilinear difference is significant over training seeds, the seed spread, and what was verified), paper
vs this run (matting; with the networks' parameters and MACs, `pipeline.report.complexity`), the matting
variants over seeds, evaluation-only sets and tiling, figures, the toy study, where this reproduction and the
paper disagree, operator speed, provenance (with the host of the matting runs).
Every number goes through `SourceReader`, so `results/report/cells.json` lists each printed cell with the file
and key it came from (numbers computed from several, like a paired difference, with all their inputs); every
matting number names its checkpoint. The matting results are read per seed (`pipeline.report.seed_tables`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from pipeline.core.params import BaseParams
from pipeline.report import plots
from pipeline.report.cells import Cell, SourceReader, Table, fmt_number
from pipeline.report.complexity import complexity_table
from pipeline.report.params import ReportParams
from pipeline.report.seed_tables import (BASELINE, checkpoint_cell, checkpoint_label, disagreement_section,
                                         eval_path, is_aggregate, matting_hosts, matting_table, network_width,
                                         paired_sad, prediction_dir, seed_glance, seeds_text, train_dirs,
                                         train_summaries, training_table)
from pipeline.report.seed_tables import load as _load
from pipeline.report.seed_tables import variants as _variants

MATTING_METRICS = ("sad", "mse", "grad", "conn")
METRIC_TITLES = {"sad": "SAD", "mse": "MSE", "grad": "Grad", "conn": "Conn"}
TOY_METRICS = ("psnr", "ssim", "mae", "mse")
TOY_TITLES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "mae": "MAE", "mse": "MSE"}
TOY_DECIMALS = {"psnr": 2, "ssim": 4, "mae": 4, "mse": 5}
PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")
SOURCE_NAMES = {"synthetic": "procedural synthetic set (ours)", "comp1k": "Composition-1k",
                "d646": "Distinctions-646", "folder": "user folder"}
#: The verify stage's checks in the order the report lists them, with a plain-language title.
VERIFY_TITLES = {"metric_parity": "SAD/MSE/Grad/Conn against the original MATLAB code",
                 "operator_parity": "A2U/A2D reassembly kernels against loop references (float64)",
                 "gradients": "backward passes of the reassembly kernels (gradcheck, float64)",
                 "parameter_counts": "parameter counts against the official code",
                 "onnx_parity": "ONNX export of an A2D/A2U pair, onnxruntime against PyTorch",
                 "successor_identities": "FADE/SAPA/DySample with zero parameters: ½guide + ½box, box, bilinear "
                                         "(float64)",
                 "successor_gradients": "FADE/SAPA/DySample backward passes (gradcheck, float64)",
                 "successor_onnx": "FADE/SAPA/DySample ONNX export (opset 17), onnxruntime against PyTorch"}
#: (group, key in verify.json, title) of the parameter-count rows, in the order the report shows them.
PARAMETER_ROWS = (("network", "bilinear", "matting network, bilinear baseline"),
                  ("network", "a2u extra", "added by A2U (channel-shared)"),
                  ("network", "a2u extra without GroupNorm affine", "added by A2U without GroupNorm affine "
                                                                    "(FADE's \"+38K\")"),
                  ("network", "a2u-unshared extra", "added by A2U (channel-wise)"),
                  ("generator", "shared C=64", "one kernel generator, C = 64 (78C + 74)"),
                  ("generator", "unshared C=64", "one channel-wise generator, C = 64 (2C² + 78C + 72)"))


@dataclass
class Report:
    """Everything the templates render."""

    title: str
    profile: str
    dataset: str
    glance: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    stage_times: dict[str, float] = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def compose_source(results: Path, reader: SourceReader) -> str | None:
    """The compose stage's `compose.source` (synthetic, comp1k, ...), from its run.json."""
    run = _load(reader, results / "compose" / "run.json")
    return (run.get("params", {}).get("compose") or {}).get("source")


def dataset_label(results: Path, reader: SourceReader) -> str:
    """Which data the matting numbers were measured on, from the compose stage's own record."""
    source = compose_source(results, reader)
    return "unknown (no compose run.json)" if source is None else SOURCE_NAMES.get(source, str(source))


# ----------------------------------------------------------------------------------------------- at a glance
def claim_table(results: Path, reader: SourceReader, paper_json: Path) -> tuple[Table, dict[str, Any]]:
    """What the paper's claim needs against what this run had, row by row, and the verdict.

    The claim can be reproduced only on the paper's data with the paper's budget; otherwise the verdict is
    'not tested by this run', with the rows that differ as the reasons.
    """
    paper = reader.load(paper_json)
    recipe, claim = paper["recipe"], paper["claim"]
    base_v, method_v = claim["baseline"], claim["method"]
    rows_by_variant: dict[str, int] = {}  # the first (published) row of each variant
    for index, row in enumerate(paper["rows"]):
        rows_by_variant.setdefault(row["variant"], index)
    table = Table("claim", ["", "paper", "this run", "same?"],
                  caption=f"The paper's claim: {claim['text']} (SAD {base_v} → {method_v}). A run can test it only "
                          "on the paper's data with the paper's training budget.")
    source = compose_source(results, reader)
    reasons = []

    def add(name: str, paper_cell: Cell | str, ours: Cell | str, same: bool | None) -> None:
        table.add(name, paper_cell, ours, {True: "yes", False: "no", None: "–"}[same])
        if same is False:
            reasons.append(name)

    evaluated = next((eval_path(results, v) for v in (method_v, base_v) if eval_path(results, v).is_file()), None)
    label = SOURCE_NAMES.get(source, source) if source else dataset_label(results, reader)
    ours_data = reader.get(evaluated, "sets", "test", "n_images", fmt=lambda v: f"{v} test images, {label}") \
        if evaluated else Cell(label)
    add("data", reader.get(paper_json, "recipe", "test_images", fmt=lambda v: f"{v:,} test images, Composition-1k"),
        ours_data, source == recipe["source"] if source else None)
    summary = next((path for v in (base_v, method_v) for path in train_summaries(results, reader, v).values()), None)
    for key, label in (("iters", "training iterations"), ("crop", "training crop"), ("batch_size", "batch size")):
        ours = reader.get(summary, key) if summary else Cell("(not trained)")
        add(label, reader.get(paper_json, "recipe", key), ours,
            None if ours.value is None else int(ours.value) >= int(recipe[key]) if key == "iters"
            else int(ours.value) == int(recipe[key]))
    seeded = next((eval_path(results, v) for v in (method_v, base_v)
                   if is_aggregate(_load(reader, eval_path(results, v)))), None)
    add("training seeds per variant", "1 (not stated)",
        reader.get(seeded, "seeds", fmt=lambda v: f"seeds {seeds_text(v)} ({len(v)} per variant)" if len(v) != 1
                   else f"seed {v[0]} (1 per variant)") if seeded else "1", None)

    sad_cells: dict[str, dict[str, Cell]] = {"paper": {}, "ours": {}}
    for variant in (base_v, method_v):
        if variant in rows_by_variant:
            sad_cells["paper"][variant] = reader.get(paper_json, "rows", rows_by_variant[variant], "sad")
        evaluated = eval_path(results, variant)
        if evaluated.is_file():
            sad_cells["ours"][variant] = reader.get(evaluated, "sets", "test", "sad", "mean")
    gains = {}
    for who, cells in sad_cells.items():
        if len(cells) == 2 and cells[base_v].value:
            gains[who] = (cells[base_v].value - cells[method_v].value) / cells[base_v].value
    ours_text = "(not evaluated)"
    if "ours" in gains:
        b, m = sad_cells["ours"][base_v], sad_cells["ours"][method_v]
        ours_text = Cell(f"{b.text} → {m.text} ({-gains['ours']:+.1%})", b.source, b.key, b.value)
    paper_text = "–"
    if "paper" in gains:
        b, m = sad_cells["paper"][base_v], sad_cells["paper"][method_v]
        paper_text = Cell(f"{b.text} → {m.text} ({-gains['paper']:+.1%})", b.source, b.key, b.value)
    table.add(f"test SAD, {base_v} → {method_v}", paper_text, ours_text, "")

    testable = not reasons and source == recipe["source"]
    paired = paired_sad(results, reader, method_v, base_v)
    # over several seeds the gain must also hold seed by seed: a paired interval that includes 0 is no gain
    held = paired is None or paired["interval"] is None or (paired["significant"] and paired["mean"] < 0)
    if not testable:
        verdict = "not tested by this run"
    else:
        verdict = "reproduced" if gains.get("ours", -1.0) >= 0.5 * gains.get("paper", 0.0) and held \
            else "not reproduced"
    return table, {"verdict": verdict, "reasons": reasons, "testable": testable, "claim": claim["text"],
                   "gains": gains, "paired": paired, "smoke": smoke_demonstration(results, reader, reasons)}


def smoke_demonstration(results: Path, reader: SourceReader, reasons: list[str] | None = None,
                        margin: float = 0.8) -> dict | None:
    """{'label', 'text'}: what this run's matting numbers are, when they are not the paper's setting; else None.

    - label "Smoke demonstration": every evaluated variant's test SAD is within `margin` of the trimap-only
      baseline's (the networks have not learnt to matte): the numbers only demonstrate the pipeline;
    - label "CPU-scale measurement": the networks learnt, but the training budget differs from the paper's
      (`reasons` of the paper-vs-run table: iterations, crop or batch size): a comparison at this budget only.
    The text states the variants' SADs, the trimap-only SAD and the paired interval over seeds (or, from one
    seed, the spread over test images), so a reader sees how large the difference is.
    """
    scores, spreads, trivial, seeds = {}, {}, None, set()
    for variant in _variants(results, "eval"):
        doc = _load(reader, eval_path(results, variant))
        seeds.add(len(doc.get("seeds") or [None]))
        test = doc.get("sets", {}).get("test", {})
        if test.get("sad", {}).get("mean") is not None:
            scores[variant] = test["sad"]["mean"]
            spreads[variant] = test["sad"].get("std")
        trivial = (test.get("trivial") or {}).get("sad", trivial)
    if not scores:
        return None
    shown = ", ".join(f"{v} {sad:.2f}" for v, sad in sorted(scores.items()))
    if trivial and all(sad >= margin * trivial for sad in scores.values()):
        return {"label": "Smoke demonstration",
                "text": f"The matting networks of this run have not learnt to matte: their test SAD ({shown}) is "
                        f"within {1 - margin:.0%} of, or above, what the trimap alone scores ({trivial:.2f}, unknown "
                        "region predicted as background). At this budget the matting stages are a smoke "
                        "demonstration of the pipeline."}
    budget = [r for r in (reasons or []) if r in ("training iterations", "training crop", "batch size")]
    if not budget:
        return None
    n_seeds = max(seeds)
    runs = "from one seed" if n_seeds == 1 else f"over {n_seeds} training seeds"
    text = (f"The matting networks are trained on a budget unlike the paper's ({', '.join(budget)} differ), "
            f"{runs}, and learnt to matte (test SAD below {margin:.0%} of the trimap-only score): a comparison of "
            f"the operators at this budget, not at the paper's setting. Test SAD {shown}"
            + (" (means over seeds)" if n_seeds > 1 else ""))
    if trivial:
        text += f"; the trimap alone scores {trivial:.2f}"
    stds = [v for v in spreads.values() if v is not None]
    gap = max(scores.values()) - min(scores.values())
    paired = paired_sad(results, reader, "a2u", BASELINE) if n_seeds > 1 else None
    if paired is not None and paired["interval"] is not None:
        low, high = paired["interval"]
        text += (f"; a2u − {BASELINE}, paired over seeds: {paired['mean']:+.2f} (95% CI {low:+.2f} to {high:+.2f}, "
                 + ("significant at this budget" if paired["significant"] else "not significant") + ")")
    elif n_seeds == 1 and len(scores) > 1 and stds and gap < min(stds):
        text += (f"; the difference between the variants ({gap:.2f}) is smaller than the spread over the test "
                 f"images (std {min(stds):.2f} to {max(stds):.2f})")
    return {"label": "CPU-scale measurement", "text": text + "."}


def verification_table(results: Path, reader: SourceReader) -> Table | None:
    """The verify stage's checks: what was measured, against which tolerance, passed or not."""
    path = results / "verify" / "verify.json"
    if not path.is_file():
        return None
    checks = reader.load(path).get("checks", {})
    golden_test = (checks.get("metric_parity") or {}).get("full_set", {}).get("test", "the test suite")
    table = Table("verification", ["check", "measured", "tolerance / reference", "result"],
                  caption="Measured by the verify stage of this run (results/verify/verify.json). ¹ The 39 golden "
                          f"cases on alphamatting.com images are not redistributed; {golden_test} checks all 45 "
                          "where they are available.")

    def status(name: str) -> str:
        return {True: "passed", False: "FAILED", None: "not run"}[checks[name].get("passed")]

    def sci(v: float) -> str:
        return f"{v:.1e}"

    if "metric_parity" in checks:
        mp = checks["metric_parity"]
        worst = max(MATTING_METRICS, key=lambda m: mp["max_rel_error"][m])
        table.add(VERIFY_TITLES["metric_parity"],
                  reader.get(path, "checks", "metric_parity", "max_rel_error", worst,
                             fmt=lambda v: f"{sci(v)} max relative error ({METRIC_TITLES[worst]}), "
                                           f"{mp['n_cases']} embedded cases"),
                  reader.get(path, "checks", "metric_parity", "tolerance",
                             fmt=lambda v: f"{sci(v)} (all {mp['full_set']['n_cases']} cases: test suite¹)"),
                  status("metric_parity"))
    if "operator_parity" in checks:
        paths = "fused C++, blocked, autograd and export paths" if checks["operator_parity"].get("fused") \
            else "fast, autograd and export paths"
        table.add(VERIFY_TITLES["operator_parity"],
                  reader.get(path, "checks", "operator_parity", "max_abs_error",
                             fmt=lambda v: f"{sci(v)} max |Δ| ({paths}; G = 1, 2)"),
                  reader.get(path, "checks", "operator_parity", "tolerance", fmt=sci), status("operator_parity"))
    if "gradients" in checks:
        fused = " (pure PyTorch and fused C++)" if "up_fused" in checks["gradients"] else ""
        table.add(VERIFY_TITLES["gradients"], f"upsampling and downsampling{fused}", "torch.autograd.gradcheck",
                  status("gradients"))
    if "fused_parity" in checks:   # which reassembly backend ran on CPU, and the fused op against pure PyTorch
        fp = checks["fused_parity"]
        # plain text (traced cells show numbers): the backend, and why it is eager
        backend = {"fused-cpp": "fused C++ op (fused-cpp)", "eager": "pure PyTorch (eager)"}.get(
            fp.get("backend"), str(fp.get("backend"))) + (f": {fp['reason']}" if fp.get("reason") else "")
        table.add("reassembly backend of eager CPU calls", backend,
                  "fused-cpp when built; A2U_FUSED_CPU=0 forces eager", str(fp.get("backend")))
        title = "fused C++ ops against pure PyTorch (float32, output and gradients)"
        if fp.get("passed") is None:
            table.add(title, fp.get("skipped", "not run"), "", "not run")
        else:
            shape = fp.get("shape", {})
            table.add(title,
                      reader.get(path, "checks", "fused_parity", "max_rel_error",
                                 fmt=lambda v: f"{sci(v)} max relative |Δ| (A2U up, A2D down, generator correlation and embedding; N = {shape.get('batch')}"
                                               f", C = {shape.get('channels')}, R = {shape.get('size')})"),
                      reader.get(path, "checks", "fused_parity", "tolerance", fmt=sci), status("fused_parity"))
    if "parameter_counts" in checks:
        counts = checks["parameter_counts"]
        for group, name, title in PARAMETER_ROWS:
            row = counts.get(group, {}).get(name)
            if row is None:
                continue
            table.add(f"parameters: {title}", reader.get(path, "checks", "parameter_counts", group, name, "ours"),
                      reader.get(path, "checks", "parameter_counts", group, name, "official",
                                 fmt=lambda v: f"{v:,} (official code)"),
                      "equal" if row.get("equal") else "DIFFERENT")
    if "onnx_parity" in checks:
        onnx = checks["onnx_parity"]
        if onnx.get("passed") is None:
            table.add(VERIFY_TITLES["onnx_parity"], onnx.get("skipped", "not run"), "", "not run")
        else:
            sizes = ", ".join(onnx.get("max_abs_diff", {}))
            table.add(VERIFY_TITLES["onnx_parity"],
                      reader.get(path, "checks", "onnx_parity", "max_abs_diff_worst",
                                 fmt=lambda v: f"{sci(v)} max |Δ| at {sizes}"),
                      reader.get(path, "checks", "onnx_parity", "tolerance", fmt=sci), status("onnx_parity"))
    if "successors" in checks:
        _successor_rows(table, checks["successors"], path, reader, sci)
    return table if table.rows else None


def _successor_rows(table: Table, checks: dict[str, Any], path: Path, reader: SourceReader,
                    sci: Callable[[float], str]) -> None:
    """The verify stage's FADE/SAPA/DySample rows: identities, gradcheck, parameter counts, ONNX parity."""
    names = ", ".join(checks.get("identities", {}))
    worst = max(checks["identities"], key=checks["identities"].get)
    table.add(VERIFY_TITLES["successor_identities"],
              reader.get(path, "checks", "successors", "identities", worst,
                         fmt=lambda v: f"{sci(v)} max |Δ| ({names})"),
              reader.get(path, "checks", "successors", "identity_tolerance", fmt=sci),
              "passed" if max(checks["identities"].values()) <= checks["identity_tolerance"] else "FAILED")
    grads = checks.get("gradients", {})
    table.add(VERIFY_TITLES["successor_gradients"], f"{sum(grads.values())} of {len(grads)} operators",
              "torch.autograd.gradcheck", "passed" if all(grads.values()) else "FAILED")
    for name, row in checks.get("parameter_counts", {}).items():
        official = (reader.get(path, "checks", "successors", "parameter_counts", name, "official",
                               fmt=lambda v: f"{v:,} (official code)") if row.get("official") is not None
                    else "not published")
        table.add(f"parameters added to the matting network by {name}",
                  reader.get(path, "checks", "successors", "parameter_counts", name, "ours"), official,
                  {True: "equal", False: "DIFFERENT", None: "ours only"}[row.get("equal")])
    if "onnx" in checks:
        worst = max(checks["onnx"], key=checks["onnx"].get)
        table.add(VERIFY_TITLES["successor_onnx"],
                  reader.get(path, "checks", "successors", "onnx", worst,
                             fmt=lambda v: f"{sci(v)} max relative |Δ| ({worst}; 2 sizes each)"),
                  reader.get(path, "checks", "successors", "onnx_tolerance", fmt=sci),
                  "passed" if checks["onnx"][worst] <= checks["onnx_tolerance"] else "FAILED")
    else:
        table.add(VERIFY_TITLES["successor_onnx"], checks.get("onnx_skipped", "not run"), "", "not run")


def targets_summary(results: Path, reader: SourceReader) -> dict[str, int] | None:
    """How many performance targets the bench met, missed, or could not measure."""
    path = results / "bench" / "details" / "targets.json"
    if not path.is_file():
        return None
    met = [check.get("met") for check in reader.load(path).get("checks", [])]
    return {"met": met.count(True), "missed": met.count(False), "not_measured": met.count(None), "total": len(met)}


# ----------------------------------------------------------------------------------------------- matting
def paper_vs_reproduced(results: Path, reader: SourceReader, report: Report, paper_json: Path) -> Table:
    """Paper rows (Composition-1k) and this run's rows, each labelled with its dataset; never mixed in a column."""
    paper = reader.load(paper_json)
    aggregate = any(is_aggregate(_load(reader, eval_path(results, v))) for v in _variants(results, "eval"))
    spread = ("mean ± sample std over training seeds (each seed: the mean over the test images)" if aggregate
              else "mean ± std over the test images")
    table = Table("paper_vs_reproduced", ["upsampler", "measured on", "SAD", "MSE", "Grad", "Conn", "source"],
                  caption="Paper rows: " + paper["source_note"].strip() + f" This run's rows: {spread}, the "
                          "checkpoint named in the row.")
    width = network_width(results, reader)
    network = {True: f", mini network (width {' and '.join(f'{w:g}' for w in width['widths'])})",
               False: ", full network (width 1)", None: ""}[width["mini"]]
    for index, row in enumerate(paper["rows"]):
        table.add(row["label"] + (f" ({row['checkpoint']})" if row.get("checkpoint") else ""), paper["dataset"],
                  *[reader.get(paper_json, "rows", index, m) for m in MATTING_METRICS], row["source"])
    for variant in _variants(results, "eval"):
        summary = results / "eval" / variant / "summary.json"
        if not summary.is_file():
            continue
        seeds = _load(reader, summary).get("seeds")
        table.add(f"{variant} (this run, {checkpoint_label(reader, summary)})",
                  f"{report.dataset}, test split, profile {report.profile}{network}"
                  + (f", {len(seeds)} seed{'s' if len(seeds) > 1 else ''}" if seeds else ""),
                  *[reader.mean_std(summary, "sets", "test", m) for m in MATTING_METRICS], reader.rel(summary))
    return table


def extra_sets_table(results: Path, reader: SourceReader) -> Table | None:
    """Evaluation-only sets (e.g. alphamatting.com) per variant, when configured."""
    table = Table("extra_sets", ["variant", "checkpoint (iteration)", "set", "SAD", "MSE", "Grad", "Conn", "images"],
                  caption="Mean ± std over training seeds where the evaluation covers several (each seed: the mean "
                          "over the set's images), else over the images.")
    for variant in _variants(results, "eval"):
        summary = results / "eval" / variant / "summary.json"
        if not summary.is_file():
            continue
        sets = reader.load(summary).get("sets", {})
        for name in sorted(k for k in sets if k != "test"):
            table.add(variant, checkpoint_cell(reader, summary), name,
                      *[reader.mean_std(summary, "sets", name, m) for m in MATTING_METRICS],
                      reader.get(summary, "sets", name, "n_images"))
    return table if table.rows else None


def tiling_table(results: Path, reader: SourceReader) -> Table | None:
    """Effect of tiled inference on the test-split metrics and on peak memory, per variant."""
    table = Table("tiling", ["variant", "checkpoint (iteration)", "tile", "SAD whole", "SAD tiled", "Δ SAD", "Δ MSE",
                             "Δ Grad", "Δ Conn", "peak MiB whole", "peak MiB tiled"],
                  caption="Tiled inference (overlapping tiles blended with linear ramps) against whole-image "
                          "inference on the same test images and checkpoint; Δ = tiled − whole (over several "
                          "training seeds: the mean over seeds of each seed's numbers).")
    for variant in _variants(results, "eval"):
        path = results / "eval" / variant / "summary.json"
        if not path.is_file() or "tiled_check" not in reader.load(path):
            continue
        delta = lambda m: reader.get(path, "tiled_check", m, "delta", fmt=lambda v: f"{v:+.4g}")  # noqa: E731
        table.add(variant, checkpoint_cell(reader, path),
                  reader.get(path, "tiled_check", "tile", fmt=lambda v: f"{v:g}"),  # a mean over seeds: 128.0
                  reader.get(path, "tiled_check", "sad", "whole"), reader.get(path, "tiled_check", "sad", "tiled"),
                  *[delta(m) for m in MATTING_METRICS],
                  reader.get(path, "tiled_check", "peak_mem_mb_max", "whole", fmt=lambda v: fmt_number(v, 3)),
                  reader.get(path, "tiled_check", "peak_mem_mb_max", "tiled", fmt=lambda v: fmt_number(v, 3)))
    return table if table.rows else None


# ----------------------------------------------------------------------------------------------- toy
def toy_section(results: Path, reader: SourceReader, report: Report, fig_dir: Path | None = None) -> None:
    """The toy study: its table (best-checkpoint test metrics over seeds, the paired difference to the baseline
    with its interval, the plateau epoch), its learning curves, its grid, and in words which differences are
    significant."""
    path = results / "toy" / "summary.json"
    if not path.is_file():
        report.note("toy", "not produced by this run (results/toy/summary.json is missing)")
        return
    data = reader.load(path)
    per_dataset = data.get("results", {})
    rows = [(d, op) for d, ops in per_dataset.items() for op in ops]
    last_differs = any(per_dataset[d][op]["last"]["psnr"]["mean"] != per_dataset[d][op]["best"]["psnr"]["mean"]
                       for d, op in rows)
    header = ["dataset", "operator", "params", "checkpoint (epoch)"] + [TOY_TITLES[m] for m in TOY_METRICS]
    baseline = data.get("baseline", "bilinear")
    confidence = round(100 * data.get("confidence", 0.95))
    header += [f"Δ PSNR vs {baseline} [{confidence}% CI]", "plateau epoch"]
    if last_differs:
        header.append("PSNR, last epoch")
    seeds = data.get("seeds") or []
    table = Table("toy", header, caption=(
        f"Protocol: {data.get('protocol', 'ours')}; profile {data.get('profile')}, {data.get('epochs')} epochs, "
        f"seeds {seeds}{' (mean ± sample std)' if len(seeds) > 1 else ''}. Test metrics of the checkpoint with the "
        "best validation PSNR (its epoch is shown)"
        + ("; the last column is the last epoch's PSNR where it differs." if last_differs else
           "; here the best epoch is the last one for every operator.")
        + f" Δ PSNR: paired by seed, Student-t {confidence}% interval over the seeds (* = excludes 0: significant)."
        + " Plateau: first epoch after which the mean validation PSNR never rises by more than 0.1 dB (— : still"
        " rising at the last epoch)."
        + " Not the paper's table (which is not public)."))
    for dataset in data.get("unavailable") or {}:
        table.add(dataset, "(not run: dataset not available on this machine; see results/toy/summary.json)",
                  *[""] * (len(header) - 2))
    for dataset, operator in rows:
        key = ("results", dataset, operator)
        epoch = per_dataset[dataset][operator]["best"]["epoch"]
        epoch_cell = reader.get(path, *key, "best", "epoch", "mean", fmt=lambda v: f"{v:.0f} (best)") \
            if not epoch.get("std") else reader.mean_std(path, *key, "best", "epoch", digits=3)
        row = [dataset, operator, reader.get(path, *key, "params"), epoch_cell]
        row += [reader.mean_std(path, *key, "best", m, decimals=TOY_DECIMALS[m]) for m in TOY_METRICS]
        row.append(_paired_cell(reader, path, key, per_dataset[dataset][operator]))
        row.append(reader.get(path, *key, "plateau_epoch", fmt=lambda v: "—" if v is None else str(v)))
        if last_differs:
            row.append(reader.mean_std(path, *key, "last", "psnr", decimals=TOY_DECIMALS["psnr"]))
        table.add(*row)
    report.tables["toy"] = table
    for dataset, sentences in (data.get("findings") or {}).items():
        for sentence in sentences:
            report.note("toy", f"{dataset}: {sentence}")
    curves = {d: {op: row["curve"] for op, row in ops.items() if row.get("curve")} for d, ops in per_dataset.items()}
    if fig_dir is not None:
        figure = plots.toy_curves(curves, fig_dir / "toy_curves.png", baseline)
        if figure is not None:
            report.figures["toy_curves"] = figure
    if (results / "toy" / "grid.png").is_file():
        report.figures["toy_grid"] = results / "toy" / "grid.png"
    report.glance["toy"] = (f"protocol ours (not the paper's table, which is not public); {data.get('epochs')} "
                            f"epoch(s), seeds {seeds}, profile {data.get('profile')}")


def _paired_cell(reader: SourceReader, path: Path, key: tuple, row: dict[str, Any]) -> Cell:
    """'−1.23 [−2.01, −0.45] *' traced to results.<dataset>.<operator>.paired.mean, or '— (baseline)'."""
    paired = row.get("paired")
    if not paired:
        return Cell("— (baseline)" if "per_seed" in row else "—")
    return reader.get(path, *key, "paired", "mean", fmt=lambda _: paired["text"])


# ----------------------------------------------------------------------------------------------- bench
def bench_table(results: Path, reader: SourceReader) -> Table | None:
    """The performance targets of the bench stage: measured value, limit, met or not."""
    path = results / "bench" / "details" / "targets.json"
    if not path.is_file():
        return None
    backend = reader.load(path).get("reassembly_backend")   # which A2U/A2D reassembly ran (fused C++ or eager)
    backend_text = ""
    if backend:
        label = {"fused-cpp": "fused C++ op (fused-cpp)", "eager": "pure PyTorch (eager)"}.get(
            backend.get("backend"), str(backend.get("backend")))
        reason = f" ({backend['reason']})" if backend.get("reason") else ""
        backend_text = f" A2U/A2D reassembly backend: {label}{reason}."
    table = Table("bench", ["target", "measured", "limit", "met"],
                  caption="Measured by the bench stage (interleaved medians in one process). Ratios are against "
                          "F.interpolate(bilinear) for upsamplers and 2×2 average pooling for downsamplers."
                          f"{backend_text} Full tables: results/bench/details/table.md.")
    for i, check in enumerate(reader.load(path).get("checks", [])):
        met = {True: "yes", False: "no", None: "not measured"}[check.get("met")]
        table.add(check.get("name", "?"), reader.get(path, "checks", i, "value", fmt=lambda v: fmt_number(v, 3)),
                  check.get("limit", ""), met)
    return table if table.rows else None


def bench_figure(results: Path, reader: SourceReader, fig_dir: Path) -> Path | None:
    """Forward-time ratios at the matting shapes (batch 1), rows labelled with what each pair downsamples with."""
    ops_path = results / "bench" / "details" / "ops.json"
    if not ops_path.is_file():
        return None
    operators = _load(reader, results / "bench" / "details" / "operators.json")
    return plots.bench_ratios(reader.load(ops_path), operators, fig_dir / "bench_ratios.png")


# ----------------------------------------------------------------------------------------------- figures
def stage_times(results: Path, reader: SourceReader) -> dict[str, float]:
    """Wall time of every stage that wrote a run.json."""
    out = {}
    for run in sorted(results.glob("**/run.json")):
        parts = run.relative_to(results).parts
        if any(part.startswith(".") for part in parts):
            continue  # inside an interrupted stage's temporary folder: not a result
        if "runs" in parts:
            continue  # the toy's per-run records
        data = reader.load(run)
        if "wall_time_s" in data:
            out[reader.rel(run.parent)] = float(data["wall_time_s"])
    return out


def curves_figure(results: Path, reader: SourceReader, fig_dir: Path) -> Path | None:
    """Training and validation curves of every variant and seed from each seed's DVCLive folder (one thin line
    per seed, one colour per variant), each seed's evaluated checkpoint marked."""
    series: dict[str, dict[str, dict[int | None, Path]]] = {}
    marks: dict[str, dict[int | None, int]] = {}
    for variant in _variants(results, "train"):
        doc = _load(reader, eval_path(results, variant))
        iters = dict(zip([int(s) for s in doc.get("seeds", [])], (doc.get("checkpoint") or {}).get("iters", [])))
        for seed, folder in train_dirs(results, reader, variant).items():
            metric_dir = folder / "dvclive" / "plots" / "metrics"
            for tsv in sorted(metric_dir.glob("**/*.tsv")):
                name = str(tsv.relative_to(metric_dir).with_suffix(""))
                if name.startswith("loss") or name.startswith("val/"):
                    series.setdefault(variant, {}).setdefault(name, {})[seed] = tsv
            mark = iters.get(seed) if seed is not None else (doc.get("checkpoint") or {}).get("iter")
            if mark is not None:
                marks.setdefault(variant, {})[seed] = int(mark)
    return plots.training_curves(series, fig_dir / "training_curves.png", marks) if series else None


def bars_figure(results: Path, reader: SourceReader, fig_dir: Path) -> Path | None:
    """Test metrics per matting variant: bars at the mean over seeds with the std over seeds and each seed's value
    as a dot (an old single-seed summary: the std over the test images), each bar naming its checkpoint."""
    values: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, float]] = {}
    points: dict[str, dict[str, list[float]]] = {}
    n_images, n_seeds = set(), set()
    for variant in _variants(results, "eval"):
        summary = results / "eval" / variant / "summary.json"
        if not summary.is_file():
            continue
        data = reader.load(summary)
        test = data.get("sets", {}).get("test", {})
        checkpoint = data.get("checkpoint") or {}
        iters = [i for i in (checkpoint.get("iters") or [checkpoint.get("iter")]) if i is not None]
        label = f"{variant}\n{checkpoint.get('which', '?')}" + (f" @{chr(10) if len(iters) > 1 else ' '}"
                                                                  f"{'/'.join(map(str, iters))}" if iters else "")
        n_images.add(test.get("n_images"))
        n_seeds.add(len(data["seeds"]) if is_aggregate(data) else None)
        for m in MATTING_METRICS:
            if (test.get(m) or {}).get("mean") is not None:
                values.setdefault(METRIC_TITLES[m], {})[label] = float(test[m]["mean"])
                errors.setdefault(METRIC_TITLES[m], {})[label] = float(test[m].get("std") or 0.0)
                if test[m].get("values"):
                    points.setdefault(METRIC_TITLES[m], {})[label] = [float(v) for v in test[m]["values"]]
    if not values:
        return None
    count = ", ".join(str(n) for n in sorted(n_images, key=str))
    if None in n_seeds:
        note = f"error bars: ± 1 std over the {count} test images (one training run)"
    else:
        seeds = ", ".join(str(n) for n in sorted(n_seeds))
        note = (f"bars: mean over {seeds} training seeds; error bars: ± 1 std over seeds; dots: each seed (its mean "
                f"over the {count} test images)")
    return plots.metric_bars(values, fig_dir / "matting_bars.png",
                             "Test metrics per upsampler (lower is better)", errors, note, points or None)


def _constant_in_unknown(pred: np.ndarray, trimap: np.ndarray) -> int | None:
    """The prediction's value when it is the same everywhere in the unknown region (else None)."""
    unknown = pred[trimap == 128]
    return int(unknown[0]) if unknown.size and (unknown == unknown[0]).all() else None


def qualitative_figure(results: Path, data_dir: Path, fig_dir: Path, n_images: int, report: Report
                       ) -> Path | None:
    """Image, trimap, ground truth, each variant's prediction and its |error| on the first `n_images` test images.

    A prediction that is constant over the trimap's unknown region (e.g. all black: the network predicts no
    foreground there) is marked in its panel and counted in a note, never shown without comment.
    """
    from pipeline.core.io import read_alpha, read_name_list, read_rgb, read_trimap

    test = data_dir / "test"
    list_file = test / "list.txt"
    if not list_file.is_file():
        return None
    names = read_name_list(list_file)[:n_images]  # as written, as evaluation reads them
    reader = SourceReader(results)
    folders = {v: found for v in _variants(results, "eval") if (found := prediction_dir(results, reader, v))}
    variants = list(folders)
    shown_seeds = sorted({str(seed) for _, seed in folders.values() if seed is not None})
    if shown_seeds:
        report.note("qualitative_seed", f"Predictions of training seed {', '.join(shown_seeds)} (one seed per "
                    "variant: the first evaluated); the test metrics above are over all seeds.")
    columns = ["image", "trimap", "ground truth"] + [c for v in variants for c in (v, f"|error| {v}")]
    rows, flags, constant = [], {}, []
    for r, name in enumerate(names):
        gt = read_alpha(test / "alpha" / f"{name}.png")
        trimap = read_trimap(test / "trimap" / f"{name}.png")
        row = {"image": read_rgb(test / "image" / f"{name}.png"), "trimap": trimap, "ground truth": gt}
        for v in variants:
            pred = read_alpha(folders[v][0] / f"{name}.png")
            row[v] = pred
            row[f"|error| {v}"] = np.abs(pred.astype(np.float32) - gt.astype(np.float32)) / 255.0
            value = _constant_in_unknown(pred, trimap)
            if value is not None:
                flags[(r, v)] = f"constant {value} in unknown"
                constant.append(f"{v} on {name} ({value})")
        rows.append(row)
    if constant:
        report.note("qualitative", f"{len(constant)} of {len(names) * len(variants)} predictions shown are constant "
                    "over the trimap's unknown region (value in brackets; 0 = all black): "
                    + ", ".join(constant) + ". The network has not learnt to matte these images at this "
                    "budget; the test metrics include them.")
    return plots.qualitative_grid(rows, columns, fig_dir / "qualitative.png", flags)


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
    report.tables["claim"], report.glance["claim"] = claim_table(results, reader, paper_json)
    verification = verification_table(results, reader)
    if verification is not None:
        report.tables["verification"] = verification
    else:
        report.note("verification", "not produced by this run (results/verify/verify.json is missing)")
    report.glance["targets"] = targets_summary(results, reader)
    report.tables["paper_vs_reproduced"] = paper_vs_reproduced(results, reader, report, paper_json)
    complexity = complexity_table(reader, fig_dir, paper_json)  # measured params/MACs beside the paper rows
    if complexity is not None:
        report.tables["complexity"] = complexity
    report.tables["matting"] = matting_table(results, reader)
    report.tables["matting_training"] = training_table(results, reader)
    report.glance["seeds"] = seed_glance(results, reader, repo)
    for name, builder in (("extra_sets", extra_sets_table), ("tiling", tiling_table), ("bench", bench_table)):
        table = builder(results, reader)
        if table is not None:
            report.tables[name] = table
        elif name == "bench":
            report.note(name, "not produced by this run (results/bench/details/targets.json is missing)")
    toy_section(results, reader, report, fig_dir)
    disagreement_section(results, reader, report, paper_json)
    data_dir = repo / "data" / "composed" if data_dir is None else data_dir
    for key, fig in (("training_curves", curves_figure(results, reader, fig_dir)),
                     ("matting_bars", bars_figure(results, reader, fig_dir)),
                     ("qualitative", qualitative_figure(results, data_dir, fig_dir, cfg.qualitative_images, report)),
                     ("bench_ratios", bench_figure(results, reader, fig_dir))):
        if fig is not None:
            report.figures[key] = fig
    if (results / "compose" / "contact_sheet.png").is_file():
        report.figures["contact_sheet"] = results / "compose" / "contact_sheet.png"
    report.stage_times = stage_times(results, reader)
    report.provenance = collect_provenance(repo, base)
    report.provenance["matting_hosts"] = matting_hosts(results, reader)
    return report


def traced_cells(report: Report) -> list[dict[str, Any]]:
    """All cells with a source, for results/report/cells.json."""
    return [cell for table in report.tables.values() for cell in table.traced_cells()]


def dump_cells(report: Report) -> str:
    return json.dumps(traced_cells(report), indent=1, default=str)
