"""OpenMMLab-style entry points over the matting library: `init_model`, `matting_inference`, config preparation.

`tools/train.py`, `tools/test.py` and `demo/matting_demo.py` are thin command lines over these; they run the same
code as the DVC stages: the same Runner (`pipeline.core.runs.AtomicCheckpointRunner`, through
`pipeline.matting.train.run_training` for training), datasets, transforms, MATLAB-exact metrics
(`pipeline.matting.metrics`) and full-resolution inference (`pipeline.matting.inference.predict_alpha`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from pipeline.core.io import check_same_size, index_images, read_rgb, read_trimap
from pipeline.matting.checkpoint import load_trained_weights
from pipeline.matting.inference import predict_alpha

#: What MMEngine's `Config.fromfile` reads.
CONFIG_SUFFIXES = (".py", ".yml", ".yaml", ".json")


def _is_config_name(path: Path) -> bool:
    return path.suffix.lower() in CONFIG_SUFFIXES


def check_config_and_checkpoint(config: str | Path, checkpoint: str | Path, usage: str) -> tuple[Path, Path]:
    """(config, checkpoint) as paths, after checking that each argument is what its position says.

    `usage` is the command line's synopsis (e.g. `python tools/test.py CONFIG CHECKPOINT`). Swapped arguments
    are named as such (with the command to run); otherwise the error names the argument (CONFIG or CHECKPOINT)
    and the file: not a config file, not found, or a config given as the checkpoint.
    """
    config, checkpoint = Path(config), Path(checkpoint)
    if not _is_config_name(config) and _is_config_name(checkpoint):
        raise ValueError(f"the two arguments are swapped: {usage} takes the config first, then the checkpoint; "
                         f"got CONFIG {config} (a checkpoint?) and CHECKPOINT {checkpoint} (a config file). "
                         f"Run: {usage.split(' CONFIG')[0]} {checkpoint} {config}")
    if not _is_config_name(config):
        raise ValueError(f"CONFIG {config}: not a config file (expected {', '.join(CONFIG_SUFFIXES)}); usage: "
                         f"{usage}")
    if not config.is_file():
        raise FileNotFoundError(f"CONFIG {config}: config file not found")
    if _is_config_name(checkpoint):
        raise ValueError(f"CHECKPOINT {checkpoint}: a config file, not a checkpoint (.pth); usage: {usage}")
    if not checkpoint.is_file():
        raise FileNotFoundError(f"CHECKPOINT {checkpoint}: checkpoint file not found")
    return config, checkpoint


def default_config_for(checkpoint: str | Path) -> Path:
    """`config.py` beside a checkpoint (the layout of `results/train/<variant>/seed<s>/`)."""
    return Path(checkpoint).with_name("config.py")


def init_model(config: str | Path | Config, checkpoint: str | Path | None = None,
               device: str | torch.device = "cpu", strict: bool = True, hint: str = "") -> nn.Module:
    """Build the model of `config` (its `custom_imports` register the classes) and load `checkpoint`'s weights.

    Accepts the exported `best.pth` / `last.pth` of the train stage (checked against the size and sha256 of its
    `summary.json`) and MMEngine's `iter_<n>.pth` / `best_*.pth` of a work dir, through
    `pipeline.matting.checkpoint.load_trained_weights`: every key and shape must match (a CheckpointError names
    the checkpoint, the config and the first keys that differ) unless `strict=False` (a flag the user wrote).
    Returns the model in eval mode on `device`; `model(x)` maps N×4×H×W to a raw alpha N×1×H×W.
    """
    from models.registry import MODELS

    cfg = config if isinstance(config, Config) else Config.fromfile(str(_existing(config, "config")))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_trained_weights(model, _existing(checkpoint, "checkpoint"), getattr(cfg, "filename", None) or config,
                             strict=strict, hint=hint)
    return model.to(device).eval()


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found")
    return path


def matting_inference(model: nn.Module, image: str | Path, trimap: str | Path, device: str | torch.device = "cpu",
                      tile: int | None = None) -> np.ndarray:
    """Alpha matte (H×W uint8) of one image file with its trimap file; no ground truth needed.

    The image is read as RGB, the trimap must hold only 0 (background), 128 (unknown) and 255 (foreground) and have
    the image's size (errors name the file and the offending values). Inference pads to the network stride,
    runs at full resolution (or in overlapping `tile`×`tile` tiles) and pastes the trimap's known regions.
    """
    rgb, tri = read_rgb(image), read_trimap(trimap)
    check_same_size({"image": rgb, "trimap": tri}, f"{image} with {trimap}")
    return predict_alpha(model, rgb, tri, tile=tile, device=device)


def pair_folders(image_dir: str | Path, trimap_dir: str | Path) -> list[tuple[Path, Path]]:
    """(image, trimap) pairs of two folders, matched by file stem (the accepted extensions and rules of
    `pipeline.core.io.index_images`); an image without a trimap is an error."""
    images = sorted(index_images(image_dir).values())
    if not images:
        raise FileNotFoundError(f"{image_dir}: no images")
    trimaps = index_images(trimap_dir)
    missing = [p.name for p in images if p.stem not in trimaps]
    if missing:
        raise FileNotFoundError(f"{trimap_dir}: no trimap for {len(missing)} image(s) of {image_dir}: {missing[:5]}")
    return [(p, trimaps[p.stem]) for p in images]


def prepare_runner_config(cfg: Config, work_dir: str | Path, launcher: str = "none",
                          cfg_options: dict[str, Any] | None = None) -> Config:
    """The settings `tools/train.py` and `tools/test.py` add to a config, as the train stage does:

    `--cfg-options` merged first, then the recipe resolved exactly as the train stage resolves it
    (`pipeline.matting.train.resolve_recipe`: the config's `crop_size`, `total_batch_size` and `val_source`
    set the crop, the per-process batch and the validation loop; the loaders keep their own data roots), then
    the work dir, the launcher and DVCLive's folder inside the work dir (not the current directory).
    """
    from pipeline.matting.train import resolve_recipe

    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if "train_dataloader" in cfg:
        resolve_recipe(cfg, launcher=launcher, origin=str(getattr(cfg, "filename", "config")))
    cfg.work_dir = str(Path(work_dir).resolve())
    cfg.launcher = launcher
    for backend in cfg.get("visualizer", {}).get("vis_backends", []):
        if backend["type"] == "SafeDVCLiveVisBackend":
            backend["save_dir"] = str(Path(cfg.work_dir) / "dvclive")
    return cfg


def check_data_roots(cfg: Config, loaders: Iterable[str]) -> None:
    """Raise FileNotFoundError naming the loader and folder when a dataloader's data root does not exist.

    A loader that is absent or None (a config without validation, e.g. the paper recipe) is not checked.
    """
    for name in loaders:
        if cfg.get(name) is None:
            continue
        root = Path(cfg[name].dataset.data_root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"{name}.dataset.data_root: folder {root} not found (build it with `dvc repro compose`, or point "
                f"to another one with --cfg-options {name}.dataset.data_root=PATH)")
