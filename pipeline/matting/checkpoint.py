"""Checkpoints of matting training: export slim weights atomically, read them back, load a trained model.

MMEngine keeps full checkpoints (`iter_<n>.pth`, `best_val_sad_iter_<n>.pth`, written atomically by
`pipeline.core.runs.AtomicCheckpointRunner`) in the training work dir. The train stage exports slim copies —
`{'state_dict': ..., 'meta': {...}}`, no optimiser state — as `best.pth` and `last.pth` next to `config.py` in
`results/train/<variant>/`; `load_matting_model` reads them back with weights-only loading (torch >= 2.6).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core.compat import allow_mmengine_checkpoint_globals
from pipeline.core.io import atomic_path

EXPORTED = ("best", "last")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU with weights-only unpickling; the error names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    allow_mmengine_checkpoint_globals()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: not a checkpoint with a 'state_dict' entry")
    return checkpoint


def export_weights(source: str | Path, target: str | Path, **meta: Any) -> Path:
    """Write the model weights of MMEngine checkpoint `source` to `target` atomically (temp file + rename).

    The result holds `state_dict` (keys as in `A2UMattor.state_dict()`) and `meta` (the source's iteration plus
    `meta`); it is never visible half-written.
    """
    checkpoint = read_checkpoint(source)
    source_meta = checkpoint.get("meta", {}) or {}
    slim = {"state_dict": checkpoint["state_dict"],
            "meta": {"iter": int(source_meta.get("iter", -1)), "source": Path(source).name, **meta}}
    with atomic_path(target) as tmp:
        torch.save(slim, tmp)
    return Path(target)


def load_matting_model(train_dir: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
    """Build the trained matting model from `train_dir/config.py` and load `train_dir/<which>.pth`.

    Args:
        train_dir: a train stage output folder (`results/train/<variant>`).
        which: 'best' (lowest validation SAD) or 'last'.
        device: torch device for the model.

    Returns:
        The `A2UMattor` in eval mode; `model(x)` with x N×4×H×W (see `models.matting.inputs`) returns the raw
        alpha N×1×H×W (inputs are padded to a multiple of 16 internally).
    """
    from mmengine.config import Config

    from models.registry import MODELS

    train_dir = Path(train_dir)
    if which not in EXPORTED:
        raise ValueError(f"which must be one of {EXPORTED}, got {which!r}")
    config_path = train_dir / "config.py"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: training config not found (run the train stage first)")
    cfg = Config.fromfile(str(config_path))  # its custom_imports register the model classes
    model = MODELS.build(cfg.model)
    state = read_checkpoint(train_dir / f"{which}.pth")["state_dict"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{train_dir / f'{which}.pth'} does not match {config_path}: missing keys "
                         f"{missing[:5]}, unexpected keys {unexpected[:5]}")
    return model.to(device).eval()
