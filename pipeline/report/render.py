"""Render a `Report` to Markdown (images beside it) and a self-contained HTML file (images embedded)."""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import jinja2

from pipeline.report.build import Report

TEMPLATES = Path(__file__).with_name("templates")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=True)


def sad_gain(report: Report) -> dict[str, str] | None:
    """Relative SAD gain of a2u over bilinear, in the paper and in this run (when both variants were evaluated)."""
    table = report.tables["paper_vs_reproduced"]
    ours = {row[0].text.split(" ")[0]: row[2].value for row in table.rows if row[0].text.endswith("(this run)")}
    labels = {"Bilinear (baseline)": "bilinear", "A2U (paper)": "a2u"}  # rows of pipeline/report/paper_numbers.yaml
    paper = {labels[row[0].text]: row[2].value for row in table.rows if row[0].text in labels}
    if ours.get("bilinear") and ours.get("a2u") is not None and len(paper) == 2:
        return {"paper": f"{(paper['bilinear'] - paper['a2u']) / paper['bilinear']:.1%}",
                "ours": f"{(ours['bilinear'] - ours['a2u']) / ours['bilinear']:.1%}"}
    return None


def _context(report: Report, figs: dict[str, str], embedded: dict[str, str]) -> dict[str, Any]:
    return {"r": report, "tables": report.tables, "notes": report.notes, "figs": figs, "embedded": embedded,
            "gain": sad_gain(report)}


def render_markdown(report: Report, md_path: Path) -> str:
    """Markdown with image links relative to the Markdown file's folder."""
    figs = {k: os.path.relpath(v, md_path.parent) for k, v in report.figures.items()}
    return _env().get_template("report.md.j2").render(**_context(report, figs, {}))


def render_html(report: Report) -> str:
    """One HTML file with every figure embedded as a data URI: no network, no files beside it needed."""
    embedded = {k: "data:image/png;base64," + base64.b64encode(Path(v).read_bytes()).decode()
                for k, v in report.figures.items()}
    return _env().get_template("report.html.j2").render(**_context(report, {}, embedded))
