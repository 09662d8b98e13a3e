"""DVC stage `evaluate@<variant>`: full-resolution evaluation of a trained matting model.

Usage: python stages/evaluate.py <variant> [--params params.yaml] [--model results/train/<variant>]
                                           [--data data/composed] [--out results/eval/<variant>]

Reads params `base` and `evaluate` (`pipeline.matting.params.EvaluateParams`), loads the trained model in
`--model` (`pipeline.matting.checkpoint.load_matting_model`), evaluates the composed test split of `--data`
and every configured set, and writes `--out` atomically: per_image.csv, metrics.json, pred/<set>/<name>.png
and run.json.
"""
from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.matting.inputs import NETWORK_STRIDE  # noqa: E402
from pipeline.core.io import atomic_dir, write_json  # noqa: E402
from pipeline.core.params import as_dict, load_stage  # noqa: E402
from pipeline.core.runinfo import StageTimer  # noqa: E402
from pipeline.matting.checkpoint import load_matting_model  # noqa: E402
from pipeline.matting.eval_sets import resolve_sets  # noqa: E402
from pipeline.matting.evaluate import run_evaluation, tiled_effect  # noqa: E402
from pipeline.matting.params import EvaluateParams  # noqa: E402
from pipeline.matting.selection import resolve_checkpoint  # noqa: E402
from pipeline.matting.tiling import default_overlap  # noqa: E402

logger = logging.getLogger("stages.evaluate")


def main(argv: list[str] | None = None,
         load_model: Callable[[Path, str, str], Callable[[torch.Tensor], torch.Tensor]] = load_matting_model) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", help="train variant, e.g. bilinear or a2u")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default=None, help="train stage output (default: results/train/<variant>)")
    parser.add_argument("--data", default="data/composed", help="composed set; its test/ split is evaluated")
    parser.add_argument("--out", default=None, help="output folder (default: results/eval/<variant>)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    base, cfg = load_stage(args.params, "evaluate", EvaluateParams)
    random.seed(base.seed)
    np.random.seed(base.seed)
    torch.manual_seed(base.seed)
    device = base.torch_device()
    tile, overlap = cfg.tiling()
    sets = resolve_sets(Path(args.data) / "test", cfg.sets)
    train_dir = Path(args.model or f"results/train/{args.variant}")
    out_dir = Path(args.out or f"results/eval/{args.variant}")
    timer = StageTimer("evaluate", {"variant": args.variant, **as_dict(cfg)}, base)

    choice = resolve_checkpoint(train_dir, cfg.checkpoint)
    logger.info("evaluate@%s: checkpoint %s", args.variant, choice.describe())
    model = load_model(train_dir, choice.which, device)
    with atomic_dir(out_dir) as tmp:
        doc = run_evaluation(model, sets, tmp, stride=NETWORK_STRIDE, tile=tile, overlap=overlap, device=device,
                             continue_on_error=cfg.continue_on_error, progress=not args.no_progress,
                             variant=args.variant, train_dir=str(train_dir), **choice.as_metrics())
        if cfg.tile_check is not None and tile is None:
            check_overlap = default_overlap(cfg.tile_check, NETWORK_STRIDE)
            doc["tiled_check"] = tiled_effect(model, sets[0], doc["sets"][sets[0].name], tile=cfg.tile_check,
                                              overlap=check_overlap, device=device)
            logger.info("evaluate@%s: tiled inference (tile %d) changes SAD by %+.4f on '%s'", args.variant,
                        cfg.tile_check, doc["tiled_check"]["sad"]["delta"], sets[0].name)
            write_json(tmp / "metrics.json", doc)
        timer.write(tmp, outputs=["per_image.csv", "metrics.json", "pred/", "run.json"],
                    n_images={name: s["n_images"] for name, s in doc["sets"].items()})
    logger.info("evaluate@%s: SAD %s MSE %s Grad %s Conn %s over %s images (%s failed); results in %s (%.1f s)",
                args.variant, doc.get("sad"), doc.get("mse"), doc.get("grad"), doc.get("conn"),
                doc.get("n_images"), doc.get("n_failed"), out_dir, timer.elapsed())
    return doc


if __name__ == "__main__":
    main()
