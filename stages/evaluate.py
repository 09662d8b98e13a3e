"""DVC stage `evaluate@<variant>`: full-resolution evaluation of a trained matting model, every training seed.

Usage: python stages/evaluate.py <variant> [--params params.yaml] [--model results/train/<variant>]
                                           [--data data/composed] [--out results/eval/<variant>]

Reads params `base`, `evaluate` (`pipeline.matting.params.EvaluateParams`) and `train.seeds`; for each seed
loads the trained model in `--model`/seed<s> (`pipeline.matting.checkpoint.load_matting_model`), evaluates the
composed test split of `--data` and every configured set into `--out`/seeds/seed<s>/ (summary.json: std over
images, counts, failures, the checkpoint and its iteration, the tiling check; metrics.json, per_image.csv,
pred/<set>/<name>.png; every file read is first checked against the sha256 of `--data`/manifest.jsonl and of
each set's manifest in `--evalsets`), then writes the summary over seeds (`pipeline.core.seeds.aggregate_seeds`):
`--out`/summary.json, metrics.json (the DVC metric: test means over seeds per set) and run.json. `--out` is
replaced atomically, so a failed seed leaves the previous evaluation whole.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.matting.inputs import NETWORK_STRIDE  # noqa: E402
from pipeline.core.io import atomic_dir, remove_stale_temps  # noqa: E402
from pipeline.core.logs import stage_logging  # noqa: E402
from pipeline.core.params import as_dict, load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402
from pipeline.matting.checkpoint import load_matting_model  # noqa: E402
from pipeline.matting.eval_sets import check_composed_manifest, check_manifest, resolve_sets  # noqa: E402
from pipeline.matting.evaluate import run_evaluation, tiled_effect, write_documents  # noqa: E402
from pipeline.matting.params import EvaluateParams, load_train_params  # noqa: E402
from pipeline.core.seeds import aggregate_seeds, seed_dir_name, seed_folders  # noqa: E402
from pipeline.matting.selection import resolve_checkpoint, validation_at  # noqa: E402
from pipeline.matting.tiling import default_overlap  # noqa: E402


def main(argv: list[str] | None = None,
         load_model: Callable[[Path, str, str], Callable[[torch.Tensor], torch.Tensor]] = load_matting_model) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", help="train variant, e.g. bilinear or a2u")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default=None, help="train stage output (default: results/train/<variant>)")
    parser.add_argument("--data", default="data/composed", help="composed set; its test/ split is evaluated")
    parser.add_argument("--out", default=None, help="output folder (default: results/eval/<variant>)")
    parser.add_argument("--evalsets", default=None, help="manifests of the evaluate.sets (evalsets/): each set's "
                        "files are checked against <evalsets>/<name>/manifest.jsonl")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    train_root = Path(args.model or f"results/train/{args.variant}")
    out_dir = Path(args.out or f"results/eval/{args.variant}")
    with stage_logging(f"evaluate@{args.variant}", out_dir) as log:
        base, cfg = load_stage(args.params, "evaluate", EvaluateParams)
        seeds = load_train_params(args.params)[1].seeds
        device = base.torch_device()
        tile, overlap = cfg.tiling()
        if not Path(args.data).is_dir():
            raise FileNotFoundError(f"--data {args.data}: folder not found (the composed set whose test/ split is "
                                    "evaluated: build it with `dvc repro compose`, or point --data to one)")
        sets = resolve_sets(Path(args.data) / "test", cfg.sets)
        timer = StageTimer("evaluate", {"variant": args.variant, "seeds": list(seeds), **as_dict(cfg)}, base)
        remove_stale_temps(out_dir)  # what an interrupted earlier run left
        checked = check_composed_manifest(sets[0], args.data)  # the test files are those composed (ground truth too)
        if checked is None:
            log.warning("%s has no manifest.jsonl (not written by the compose stage): the test files are not "
                        "checked against composition hashes", args.data)
        if args.evalsets is not None:
            for eval_set in sets[1:]:
                check_manifest(eval_set, Path(args.evalsets) / eval_set.name)
        train_dirs = seed_folders(train_root, seeds)
        docs: dict[int, dict] = {}
        with atomic_dir(out_dir) as tmp:
            for seed, train_dir in zip(seeds, train_dirs):
                random.seed(base.seed)
                np.random.seed(base.seed)
                torch.manual_seed(base.seed)
                choice = resolve_checkpoint(train_dir, cfg.checkpoint)
                checkpoint = {**choice.record(), "val": validation_at(train_dir, choice.iteration)}
                log.info("seed %d: checkpoint %s", seed, choice.describe())
                model = load_model(train_dir, choice.which, device)
                seed_dir = tmp / "seeds" / seed_dir_name(seed)
                doc = run_evaluation(model, sets, seed_dir, stride=NETWORK_STRIDE, tile=tile, overlap=overlap,
                                     device=device, continue_on_error=cfg.continue_on_error,
                                     progress=not args.no_progress, variant=args.variant, seed=seed,
                                     checkpoint=checkpoint, train_dir=str(train_dir))
                if cfg.tile_check is not None and tile is None:
                    check_overlap = default_overlap(cfg.tile_check, NETWORK_STRIDE)
                    doc["tiled_check"] = tiled_effect(model, sets[0], doc["sets"][sets[0].name],
                                                      tile=cfg.tile_check, overlap=check_overlap, device=device)
                    log.info("seed %d: tiled inference (tile %d) changes SAD by %+.4f on '%s'", seed,
                             cfg.tile_check, doc["tiled_check"]["sad"]["delta"], sets[0].name)
                    write_documents(seed_dir, doc)
                log.info("seed %d: test SAD %.4g", seed, doc["sets"][sets[0].name]["sad"]["mean"])
                docs[seed] = doc
            summary = aggregate_seeds(docs, args.variant)
            write_documents(tmp, summary)
            test = summary["sets"][sets[0].name]
            log.info("test SAD over seeds %s: %.4g ± %.2g (trimap only: %.4g)", list(seeds), test["sad"]["mean"],
                     test["sad"]["std"], (test.get("trivial") or {}).get("sad", float("nan")))
            timer.write(tmp, outputs=["metrics.json", "summary.json", "seeds/", "run.json"],
                        n_images={name: s["n_images"] for name, s in summary["sets"].items()})
    return summary


if __name__ == "__main__":
    main()
