"""Matte your own image with a trimap (no ground truth needed), OpenMMLab style.

    python demo/matting_demo.py IMAGE TRIMAP OUT.png [--checkpoint results/train/a2u/seed0/best.pth] [--config F]
    python demo/matting_demo.py IMAGE_DIR TRIMAP_DIR OUT_DIR [...]      # every image of a folder

The trimap is a single-channel 8-bit PNG of the image's size holding exactly 0 (background), 128 (unknown) and
255 (foreground); anything else is an error naming the file and the values. OUT is the alpha matte (8-bit PNG,
the trimap's known regions pasted), written atomically. `--config` defaults to the `config.py` beside the
checkpoint (the layout of `results/train/<variant>/seed<s>/`). The evaluate stage runs the same inference
(`pipeline.matting.inference.predict_alpha`) and loads checkpoints the same way: the weights must fit the
config's model exactly (another variant's checkpoint is an error naming both files and the first keys that
differ) unless `--non-strict` is given, which loads only what fits and warns. Sizes in messages are W×H.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.mathenv import pin_math_env  # noqa: E402  (before torch: MKL reads it once)

pin_math_env()

from pipeline.core.io import write_image  # noqa: E402
from pipeline.core.logs import run_cli, stage_logging  # noqa: E402
from pipeline.matting.apis import default_config_for, init_model, matting_inference, pair_folders  # noqa: E402

DEFAULT_CHECKPOINT = "results/train/a2u/seed0/best.pth"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", help="RGB image file, or a folder of images")
    parser.add_argument("trimap", help="trimap file (0/128/255), or a folder with one trimap per image (same stem)")
    parser.add_argument("out", help="output alpha PNG, or a folder when IMAGE is a folder")
    parser.add_argument("--checkpoint", default=None, help=f"model weights (default: {DEFAULT_CHECKPOINT})")
    parser.add_argument("--config", help="model config (default: config.py beside the checkpoint)")
    parser.add_argument("--non-strict", action="store_true",
                        help="load only the checkpoint's weights that fit the config's model (warns about the rest)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--tile", type=int, default=None, help="tile size to bound memory (multiple of 16)")
    return parser.parse_args(argv)


def model_files(checkpoint: str | None, config: str | None) -> tuple[Path, Path]:
    """(checkpoint, config) of the command line, each checked to exist; the error names the option."""
    if checkpoint is None:
        path = Path(DEFAULT_CHECKPOINT)
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint not given, and the default {path} does not exist (train it with "
                                    "`dvc repro train@a2u-0`, or pass --checkpoint PATH)")
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"--checkpoint {path}: checkpoint file not found")
    if config is not None:
        if not Path(config).is_file():
            raise FileNotFoundError(f"--config {config}: config file not found")
        return path, Path(config)
    beside = default_config_for(path)
    if not beside.is_file():
        raise FileNotFoundError(f"--config not given, and there is no config.py beside the checkpoint {path} (a "
                                "train stage output folder has one); pass --config CONFIG")
    return path, beside


def main(argv: list[str] | None = None) -> list[Path]:
    """Write the alpha matte(s); return the written paths."""
    args = parse_args(argv)
    image, trimap, out = Path(args.image), Path(args.trimap), Path(args.out)
    with stage_logging("demo", out) as log:
        if image.is_dir() != trimap.is_dir():
            raise ValueError(f"IMAGE ({image}) and TRIMAP ({trimap}) must both be files or both be folders")
        pairs = pair_folders(image, trimap) if image.is_dir() else [(image, trimap)]
        targets = [out / f"{img.stem}.png" for img, _ in pairs] if image.is_dir() else [out]
        if not image.is_dir() and out.suffix.lower() != ".png":
            raise ValueError(f"{out}: the output alpha is written as PNG; give a .png path")
        checkpoint, config = model_files(args.checkpoint, args.config)
        model = init_model(config, checkpoint, args.device, strict=not args.non_strict,
                           hint="To use it anyway, pass --non-strict (only the weights that fit are loaded)")
        log.info("model %s with %s", config, checkpoint)
        for (img, tri), target in zip(pairs, targets):
            alpha = matting_inference(model, img, tri, device=args.device, tile=args.tile)
            write_image(target, alpha)
            log.info("%s -> %s (%dx%d)", img.name, target, alpha.shape[1], alpha.shape[0])
    return targets


if __name__ == "__main__":
    run_cli(main)
