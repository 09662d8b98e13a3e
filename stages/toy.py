"""DVC stage `toy`: every operator pair on Fashion-MNIST and MNIST reconstruction (protocol: ours).

    python stages/toy.py [--params params.yaml] [--out results/toy] [--runs results/toy/runs]

Reads params sections `base` + `toy` (budget of `base.profile`), trains one MMEngine Runner per
(dataset, operator, seed) under `--runs` (an interrupted stage resumes there), and writes, each atomically,
into `--out`: `summary.json` (every number, the budget, the datasets that could not run), `table.md`,
`grid.png`, `run.json` and the DVC metrics `psnr/<operator>.json`, `ssim/<operator>.json`
(`pipeline.toy.dvc_metrics`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, as every stage

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.core.io import remove_stale_temps, write_json, write_text  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.core.params import load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402
from pipeline.toy.dvc_metrics import write_toy_metrics  # noqa: E402
from pipeline.toy.params import ToyParams  # noqa: E402
from pipeline.toy.runner import PROTOCOL, run_track  # noqa: E402
from pipeline.toy.tables import budget_line, render_table, save_grid  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections base, toy)")
    parser.add_argument("--out", default="results/toy",
                        help="folder for summary.json, table.md, grid.png, psnr/, ssim/")
    parser.add_argument("--runs", default="results/toy/runs", help="MMEngine work_dirs, kept to resume")
    parser.add_argument("--no-download", action="store_true", help="never try the official download")
    parser.add_argument("--no-dvclive", action="store_true", help="skip the per-run DVCLive logs")
    args = parser.parse_args(argv)

    out = Path(args.out)
    with stage_logging("toy", out) as log:
        base, toy = load_stage(args.params, "toy", ToyParams)
        remove_stale_temps(out, args.runs)  # what an interrupted earlier run left (checkpoint saves included)
        timer = StageTimer("toy", toy, base)
        log.info("%d dataset(s) x %d operator(s) x %d seed(s), %d epoch(s) each (profile %s)", len(toy.datasets),
                 len(toy.operators), len(toy.seeds), toy.epochs, base.profile)
        summary, grids = run_track(toy, args.runs, allow_download=not args.no_download,
                                   dvclive=not args.no_dvclive, profile=base.profile)
        write_json(out / "summary.json", summary)
        write_toy_metrics(summary, out)
        write_text(out / "table.md", render_table(summary))
        save_grid(grids, out / "grid.png", f"Toy reconstruction, protocol: {PROTOCOL}. {budget_line(summary)}")
        timer.write(out, outputs=["summary.json", "psnr/", "ssim/", "table.md", "grid.png"],
                    runs_dir=str(args.runs))


if __name__ == "__main__":
    main()
