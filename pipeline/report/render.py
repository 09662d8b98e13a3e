"""Render a `Report` to Markdown (images beside it) and a self-contained HTML file (images embedded)."""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import jinja2

from pipeline.report.build import Report

TEMPLATES = Path(__file__).with_name("templates")
#: Figures in the order the matting section shows them, with their headings.
MATTING_FIGURES = (("training_curves", "Training and validation curves"),
                   ("matting_bars", "Test metrics per upsampler"),
                   ("qualitative", "Qualitative results: image, trimap, ground truth, each variant's prediction and "
                                   "its |error|"),
                   ("contact_sheet", "The composed test set"))


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              autoescape=False, keep_trailing_newline=True)


def _context(report: Report, figs: dict[str, str], embedded: dict[str, str]) -> dict[str, Any]:
    return {"r": report, "tables": report.tables, "notes": report.notes, "figs": figs, "embedded": embedded,
            "glance": report.glance, "matting_figures": MATTING_FIGURES}


def render_markdown(report: Report, md_path: Path) -> str:
    """Markdown with image links relative to the Markdown file's folder."""
    figs = {k: os.path.relpath(v, md_path.parent) for k, v in report.figures.items()}
    return _env().get_template("report.md.j2").render(**_context(report, figs, {}))


def render_html(report: Report) -> str:
    """One HTML file with every figure embedded as a data URI: no network, no files beside it needed."""
    embedded = {k: "data:image/png;base64," + base64.b64encode(Path(v).read_bytes()).decode()
                for k, v in report.figures.items()}
    return _env().get_template("report.html.j2").render(**_context(report, {}, embedded))
