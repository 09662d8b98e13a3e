"""The report's complexity table: parameters and MACs at 512² of every matting network the report names.

Measured rows (this project's networks at the paper's width, one per registered upsampler: bilinear, A2U and
A2U's successors) come from `network_complexity.json` beside this module, written by
`python -m models.matting.complexity` (`models.matting.flops.count_flops` on a 1×4×512×512 input; about a
minute of tracing, so not done at report time, and the report stage does not depend on `models/`). It is
copied into the report's folder like the paper numbers, so every cell is traced to a file in results/; a test
checks it against freshly built networks. Cited rows (other networks, e.g. GCA Matting) come from
`paper_numbers.yaml` rows marked `other_network`, with "not published" where their authors give no count.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.report.cells import Cell, SourceReader, Table

COMPLEXITY = Path(__file__).with_name("network_complexity.json")
#: How each measured upsampler is named in the table (the pair name follows).
LABELS = {"bilinear": "bilinear", "a2u": "A2U", "fade": "FADE", "fade-lite": "FADE-Lite",
          "sapa": "SAPA-B (d = 64)", "sapa-g": "SAPA-G (d = 64)", "dysample": "DySample",
          "dysample-plus": "DySample+"}
BASELINE = "bilinear"


def write_complexity_json(out_dir: Path, source: Path = COMPLEXITY) -> Path | None:
    """Copy the measured complexity into the report folder (None when it was never measured)."""
    from pipeline.core.io import write_text

    if not source.is_file():
        return None
    json.loads(source.read_text())  # a damaged file fails here, naming nothing half-written
    return write_text(out_dir / source.name, source.read_text())  # bytes as committed: the rows keep their order


def _published(row: dict | None) -> str:
    """'+0.12M params; +8.85 GFLOPs' from a paper row (plain text: the printed strings are not numbers)."""
    if row is None:
        return "no matting row published"
    parts = [f"{row['params']} params" if row.get("params") else None,
             f"{row['gflops']} GFLOPs" if row.get("gflops") else None]
    return "; ".join(p for p in parts if p) or "not published"


def complexity_table(reader: SourceReader, out_dir: Path, paper_json: Path,
                     source: Path = COMPLEXITY) -> Table | None:
    """Measured rows (params, Δ vs bilinear, GMACs at the counted size, Δ), the published counts beside them,
    then the cited other networks; None when `network_complexity.json` is missing."""
    path = write_complexity_json(out_dir, source)
    if path is None:
        return None
    data, paper = reader.load(path), reader.load(paper_json)
    size, width = data.get("size"), data.get("width")
    networks = data.get("networks", {})
    by_variant: dict[str, dict] = {}
    for row in paper["rows"]:
        by_variant.setdefault(row["variant"], row)
    table = Table("complexity", ["matting network", "params", f"Δ params vs {BASELINE}", f"GMACs at {size}²",
                                 f"Δ GMACs vs {BASELINE}", "published (authors' READMEs)", "source"])
    rel = reader.rel(path)
    for variant in networks:
        key = ("networks", variant)
        params = reader.get(path, *key, "params")
        gmacs = reader.get(path, *key, "gmacs", fmt=lambda v: f"{v:.2f}")
        if variant == BASELINE or BASELINE not in networks:
            d_params, d_gmacs = Cell("—"), Cell("—")
        else:
            base = ("networks", BASELINE)
            dp = networks[variant]["params"] - networks[BASELINE]["params"]
            dg = networks[variant]["gmacs"] - networks[BASELINE]["gmacs"]
            d_params = reader.derived(f"{dp:+,}", dp, f"params({variant}) - params({BASELINE})",
                                      (path, (*key, "params")), (path, (*base, "params")))
            d_gmacs = reader.derived(f"{dg:+.2f}", dg, f"gmacs({variant}) - gmacs({BASELINE})",
                                     (path, (*key, "gmacs")), (path, (*base, "gmacs")))
        published = by_variant.get(variant)
        table.add(f"A2U matting R34 + {LABELS.get(variant, variant)} (pair {variant}), this code", params, d_params,
                  gmacs, d_gmacs, _published(published),
                  f"measured ({rel})" + (f"; published: {published['source']}" if published else ""))
    for row in paper["rows"]:
        if row.get("other_network"):
            table.add(row["label"], row.get("params_note") or row.get("params") or "not published", "—",
                      row.get("gflops_note") or row.get("gflops") or "not published", "—", "—", row["source"])
    versions = data.get("versions", {})
    table.caption = (
        f"Measured: this project's matting network at width {width:g} (the paper's channels), one per registered "
        f"upsampler, counted by `models.matting.flops.count_flops` (MMEngine's FlopAnalyzer) on one "
        f"{size}×{size} input in eval mode, with torch {versions.get('torch', '?')} (`{data.get('command', '')}`). "
        "MACs are multiply-adds of convolutions, linear layers, einsum and elementwise products (the reassembly of "
        "A2U, FADE and SAPA); interpolation and grid sampling (bilinear, DySample) are in MMEngine's FLOP total, "
        "not in the MACs. "
        "FADE and SAPA are placed as their authors placed them on the A2U codebase (2×2 max-pool downsampling, "
        "guided by the encoder feature); DySample, never run on matting by its authors, is decoder-only. SAPA's "
        "matting settings are unpublished: d = 64 here (d = 32 gives +35,072 / +52,100 parameters, which fits "
        "the SAPA README's +0.04M for SAPA-B). Published counts are as printed; the input size of their GFLOPs is "
        "not stated, so they are not comparable with the MACs at 512². Cited: other networks' own counts; the "
        "A2U abstract's \"only 40% model complexity\" cannot be checked exactly, since GCA Matting publishes no "
        "parameter count or MACs" + (f" (against the estimate of about 24M, A2U's {networks['a2u']['params']:,} "
                                     "here would be about a third)" if "a2u" in networks else "") + ".")
    return table
