"""DVC stage `evaluate@<variant>`: full-resolution evaluation of a trained matting model.

Usage: python stages/evaluate.py <variant> [--params params.yaml] [--train-root results/train]
                                           [--out-root results/eval]

Reads params `base` and `evaluate` (`test_dir`, `sets`, `tile`, `tile_overlap`, `continue_on_error`,
`checkpoint`), loads results/train/<variant>/ (`pipeline.engine.checkpoint.load_matting_model`), evaluates the
composed test split and every configured set, and writes results/eval/<variant>/ atomically: per_image.csv,
metrics.json, pred/<set>/<name>.png and run.json.
"""
from __future__ import annotations

import argparse
import logging
import random
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.matting.inputs import NETWORK_STRIDE  # noqa: E402
from pipeline.evaluation.datasets import resolve_sets  # noqa: E402
from pipeline.evaluation.runner import run_evaluation, tiled_effect  # noqa: E402
from pipeline.evaluation.tiling import check_tile_size, default_overlap  # noqa: E402
from pipeline.io import atomic_dir, write_json  # noqa: E402
from pipeline.params import ParamsError, load_params, stage_params  # noqa: E402
from pipeline.runinfo import StageTimer  # noqa: E402

logger = logging.getLogger("stages.evaluate")
DEFAULT_TEST_DIR = "data/composed/test"
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """'auto' → 'cuda' when available, else 'cpu'; anything outside DEVICES raises ParamsError."""
    if name not in DEVICES:
        raise ParamsError(f"params.yaml: base.device must be one of {DEVICES}, got {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _tile_settings(cfg: dict[str, Any]) -> tuple[int | None, int | None]:
    tile, overlap = cfg.get("tile"), cfg.get("tile_overlap")
    if tile is None:
        return None, None
    if not isinstance(tile, int):
        raise ParamsError(f"params.yaml: evaluate.tile must be null or an integer, got {tile!r}")
    overlap = default_overlap(tile, NETWORK_STRIDE) if overlap is None else overlap
    try:
        check_tile_size(tile, NETWORK_STRIDE, overlap)
    except ValueError as err:
        raise ParamsError(f"params.yaml: evaluate.tile/tile_overlap: {err}") from err
    return tile, overlap


def _load_model(train_dir: Path, which: str, device: str) -> torch.nn.Module:
    from pipeline.engine.checkpoint import load_matting_model  # the training stage's loader, imported lazily

    return load_matting_model(train_dir, which=which, device=device)


def main(argv: list[str] | None = None,
         load_model: Callable[[Path, str, str], Callable[[torch.Tensor], torch.Tensor]] = _load_model) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", help="train variant, e.g. bilinear or a2u")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train-root", default="results/train")
    parser.add_argument("--out-root", default="results/eval")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    cfg = stage_params(load_params(args.params), "evaluate")
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    device = resolve_device(cfg["device"])
    tile, overlap = _tile_settings(cfg)
    which = str(cfg.get("checkpoint", "best"))
    sets = resolve_sets(cfg.get("test_dir", DEFAULT_TEST_DIR), cfg.get("sets"))
    train_dir = Path(args.train_root) / args.variant
    out_dir = Path(args.out_root) / args.variant
    timer = StageTimer("evaluate", {**cfg, "variant": args.variant})

    model = load_model(train_dir, which, device)
    with atomic_dir(out_dir) as tmp:
        doc = run_evaluation(model, sets, tmp, stride=NETWORK_STRIDE, tile=tile, overlap=overlap, device=device,
                             continue_on_error=bool(cfg.get("continue_on_error", False)),
                             progress=not args.no_progress, variant=args.variant, checkpoint=which,
                             train_dir=str(train_dir))
        check_tile = cfg.get("tile_check")
        if check_tile is not None and tile is None:
            check_overlap = default_overlap(int(check_tile), NETWORK_STRIDE)
            check_tile_size(int(check_tile), NETWORK_STRIDE, check_overlap)
            doc["tiled_check"] = tiled_effect(model, sets[0], doc["sets"][sets[0].name], tile=int(check_tile),
                                              overlap=check_overlap, device=device)
            logger.info("evaluate@%s: tiled inference (tile %d) changes SAD by %+.4f on '%s'", args.variant,
                        check_tile, doc["tiled_check"]["sad"]["delta"], sets[0].name)
            write_json(tmp / "metrics.json", doc)
        timer.write(tmp, outputs=["per_image.csv", "metrics.json", "pred/", "run.json"],
                    n_images={name: s["n_images"] for name, s in doc["sets"].items()})
    logger.info("evaluate@%s: SAD %s MSE %s Grad %s Conn %s over %s images (%s failed); results in %s (%.1f s)",
                args.variant, doc.get("sad"), doc.get("mse"), doc.get("grad"), doc.get("conn"),
                doc.get("n_images"), doc.get("n_failed"), out_dir, timer.elapsed())
    return doc


if __name__ == "__main__":
    main()
