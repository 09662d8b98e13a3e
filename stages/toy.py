"""DVC stage `toy`: every operator pair on Fashion-MNIST and MNIST reconstruction (protocol: ours).

    python stages/toy.py [--params params.yaml] [--out results/toy] [--runs results/toy/runs]

Reads params sections `base` + `toy` (budget of `base.profile`), trains one MMEngine Runner per
(dataset, operator, seed) under `--runs` (an interrupted stage resumes there), and writes, each atomically,
`metrics.json`, `table.md`, `grid.png` and `run.json` into `--out`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, as every stage script

from pipeline.core.io import remove_stale_temps, write_json, write_text  # noqa: E402
from pipeline.core.params import load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402
from pipeline.toy.params import ToyParams  # noqa: E402
from pipeline.toy.runner import PROTOCOL, run_track  # noqa: E402
from pipeline.toy.tables import budget_line, render_table, save_grid  # noqa: E402

logger = logging.getLogger("stages.toy")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (sections base, toy)")
    parser.add_argument("--out", default="results/toy", help="folder for metrics.json, table.md, grid.png")
    parser.add_argument("--runs", default="results/toy/runs", help="MMEngine work_dirs, kept to resume")
    parser.add_argument("--no-download", action="store_true", help="never try the official download")
    parser.add_argument("--no-dvclive", action="store_true", help="skip the per-run DVCLive logs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    base, toy = load_stage(args.params, "toy", ToyParams)
    remove_stale_temps(args.out, args.runs)  # what an interrupted earlier run left (checkpoint saves included)
    timer = StageTimer("toy", toy, base)
    metrics, grids = run_track(toy, args.runs, allow_download=not args.no_download, dvclive=not args.no_dvclive,
                               profile=base.profile)
    out = Path(args.out)
    write_json(out / "metrics.json", metrics)
    write_text(out / "table.md", render_table(metrics))
    save_grid(grids, out / "grid.png", f"Toy reconstruction, protocol: {PROTOCOL}. {budget_line(metrics)}")
    timer.write(out, outputs=["metrics.json", "table.md", "grid.png"], runs_dir=str(args.runs))
    logger.info("toy: wrote %s/{metrics.json,table.md,grid.png,run.json} in %.1f s (runs in %s)",
                out, timer.elapsed(), args.runs)


if __name__ == "__main__":
    main()
