"""DVC stage `bench`: time and measure every operator pair, the reassembly kernels and the matting network.

    python stages/bench.py [--params params.yaml] [--out results/bench/details]
                           [--metrics results/bench/ratios]

Reads params sections `base` and `bench` (`pipeline.bench.params.BenchParams`); writes, atomically as one folder,
`--out` {ops.json, networks.json, targets.json, table.md, ratios.png, operators.json, run.json, export/} and the
DVC metrics folder `--metrics` (one small file per headline time ratio, `pipeline.bench.dvc_metrics`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.bench.describe import describe_pairs  # noqa: E402
from pipeline.bench.dvc_metrics import bench_metrics, metric_files  # noqa: E402
from pipeline.bench.reassembly import backend_label  # noqa: E402
from pipeline.bench.run import matting_pair_factory, run_benchmark  # noqa: E402
from pipeline.core.io import atomic_dir, remove_stale_temps, write_json  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.bench.params import BenchParams  # noqa: E402
from pipeline.core.params import load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (sections base, bench)")
    parser.add_argument("--out", default="results/bench/details", help="output folder, replaced as a whole")
    parser.add_argument("--metrics", default="results/bench/ratios",
                        help="DVC metrics folder: one <ratio>.json = {a2u_x: value} per headline ratio")
    args = parser.parse_args(argv)
    with stage_logging("bench", [args.metrics, args.out]) as log:
        base, cfg = load_stage(args.params, "bench", BenchParams)
        timer = StageTimer("bench", cfg, base)
        remove_stale_temps(args.out, args.metrics)  # what an interrupted earlier run left
        with atomic_dir(args.out) as tmp:
            results = run_benchmark(cfg, base, tmp)
            write_json(tmp / "operators.json", describe_pairs(matting_pair_factory(), results["ops"]["operators"]))
            timer.write(tmp, device=results["ops"]["device"])
        headline = bench_metrics(results["ops"], results["networks"], targets=results["targets"])
        with atomic_dir(args.metrics) as tmp:
            for name, content in metric_files(headline).items():
                write_json(tmp / name, content)
        met = [c for c in results["targets"]["checks"] if c["met"] is False]
        log.info("A2U/A2D reassembly backend: %s", backend_label(results["ops"].get("reassembly_backend")))
        for item in results["ops"].get("reassembly", []):
            for direction, per in item.get("fused_vs_eager", {}).items():
                log.info("fused vs pure PyTorch, %s at %s: forward %.1fx, forward+backward %.1fx", direction,
                         item["shape"], per["fwd"]["speedup"], per["fwdbwd"]["speedup"])
        log.info("%s; %d performance target(s) missed (see %s/table.md)",
                 ", ".join(f"{k} {v:.3g}" for k, v in headline.items()) or "no ratio measured", len(met), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
