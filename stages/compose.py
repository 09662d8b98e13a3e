"""Stage `compose`: build data/composed/ from params (sections base, compose), or validate an evaluation set.

  python stages/compose.py [--data data/composed] [--results results/compose]   # from params.yaml
  python stages/compose.py --eval-only PATH --out DIR   # validate image/alpha/trimap* and write DIR/manifest.jsonl
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.compose.composed_set import build_composed_set  # noqa: E402
from pipeline.compose.contact_sheet import make_contact_sheet  # noqa: E402
from pipeline.compose.evalset import write_eval_manifest  # noqa: E402
from pipeline.compose.params import ComposeParams  # noqa: E402
from pipeline.core.io import remove_stale_temps  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.core.params import load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data", default="data/composed", help="the composed set (replaced as a whole)")
    parser.add_argument("--results", default="results/compose", help="folder for contact_sheet.png and run.json")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: compose.workers or 2)")
    parser.add_argument("--eval-only", metavar="PATH", help="validate an evaluation-only set instead of composing")
    parser.add_argument("--out", metavar="DIR", help="with --eval-only: where manifest.jsonl and summary.json go")
    args = parser.parse_args(argv)

    if args.eval_only:
        if not args.out:
            parser.error("--eval-only needs --out DIR")
        with stage_logging("compose --eval-only", args.out) as log:
            remove_stale_temps(args.out)
            summary = write_eval_manifest(args.eval_only, args.out)
            log.info("%d samples, %d files, trimaps %s", len(summary["names"]), summary["n_files"],
                     summary["trimap_dirs"])
        return 0

    with stage_logging("compose", [args.data, args.results]) as log:
        base, cfg = load_stage(args.params, "compose", ComposeParams)
        timer = StageTimer("compose", cfg, base)
        out_dir = Path(args.data)
        remove_stale_temps(out_dir, args.results)  # what an interrupted earlier run left
        summary = build_composed_set(cfg, base.seed, out_dir, workers=args.workers)
        make_contact_sheet(out_dir, Path(args.results) / "contact_sheet.png", "test")
        timer.write(args.results, counts=summary["counts"], set_hash=summary["set_hash"],
                    n_files=summary["n_files"], bytes=summary["bytes"], composed_dir=str(out_dir))
        log.info("samples %s, %.1f MB", summary["samples"], summary["bytes"] / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
