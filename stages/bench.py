"""DVC stage `bench`: time and measure every operator pair, the reassembly kernels and the matting network.

    python stages/bench.py [--params params.yaml] [--out results/bench]

Reads params sections `base` and `bench` (`pipeline.bench.params.BenchParams`); writes, atomically as one folder,
results/bench/{ops.json, networks.json, targets.json, table.md, ratios.png, run.json}.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.bench.run import run_benchmark  # noqa: E402
from pipeline.core.io import atomic_dir, remove_stale_temps  # noqa: E402
from pipeline.bench.params import BenchParams  # noqa: E402
from pipeline.core.params import load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402

logger = logging.getLogger("stages.bench")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (sections base, bench)")
    parser.add_argument("--out", default="results/bench", help="output folder, replaced as a whole")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    base, cfg = load_stage(args.params, "bench", BenchParams)
    remove_stale_temps(args.out)  # what an interrupted earlier run left
    timer = StageTimer("bench", cfg, base)
    with atomic_dir(args.out) as tmp:
        results = run_benchmark(cfg, base, tmp)
        timer.write(tmp, device=results["ops"]["device"])
    met = [c for c in results["targets"]["checks"] if c["met"] is False]
    logger.info("bench wrote %s in %.1f s; %d target(s) missed (see table.md)", args.out, timer.elapsed(), len(met))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
