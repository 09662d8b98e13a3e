"""DVC stage `report`: render results/report.md and a self-contained results/report.html from results/.

Usage: python stages/report.py [--params params.yaml] [--data data/composed]
(run from the repository root: reads results/ and dvc.lock there; see pipeline/report/)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.core.io import atomic_dir, remove_stale_temps, write_text  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.core.params import load_stage  # noqa: E402
from pipeline.report.build import build_report, dump_cells  # noqa: E402
from pipeline.report.params import ReportParams, run_variants  # noqa: E402
from pipeline.report.seed_tables import only_variants  # noqa: E402
from pipeline.report.render import render_html, render_markdown  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (sections base, report; train.variants)")
    parser.add_argument("--data", default="data/composed", help="composed set (test images for the grid)")
    args = parser.parse_args(argv)
    repo = Path.cwd()
    results = repo / "results"
    final = results / "report"
    with stage_logging("report", [Path("results/report.html"), Path("results/report.md")]):
        base, cfg = load_stage(args.params, "report", ReportParams)
        timer = StageTimer("report", cfg, base)
        remove_stale_temps(final, results / "report.md", results / "report.html")  # what an interrupted run left
        with atomic_dir(final) as tmp, only_variants(run_variants(args.params)):
            report = build_report(repo, base, cfg, tmp, final, data_dir=Path(args.data))
            html = render_html(report)  # embeds the figures while they are still in the temporary folder
            report.figures = {k: final / Path(v).relative_to(tmp) if Path(v).is_relative_to(tmp) else Path(v)
                              for k, v in report.figures.items()}
            markdown = render_markdown(report, results / "report.md")
            write_text(tmp / "cells.json", dump_cells(report) + "\n")
            timer.write(tmp)
        write_text(results / "report.md", markdown)
        write_text(results / "report.html", html)


if __name__ == "__main__":
    main()
