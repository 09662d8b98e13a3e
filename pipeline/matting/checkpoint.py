"""Checkpoints of matting training: export slim weights atomically, verify them, load a trained model.

MMEngine keeps full checkpoints (`iter_<n>.pth`, `best_val_sad_iter_<n>.pth`, written atomically by
`pipeline.core.runs.AtomicCheckpointRunner`) in the training work dir. The train stage exports slim copies —
`{'state_dict': ..., 'meta': {...}}`, no optimiser state — as `best.pth` and `last.pth` next to `config.py` in
`results/train/<variant>/seed<s>/`, and records each one's sha256 and size in `summary.json` (`checkpoints.best`,
`checkpoints.last`).

`load_trained_weights(model, checkpoint, config)` is the one way weights get into a model outside training (the
evaluate stage through `load_matting_model`, `tools/test.py`, the demo through `apis.init_model`; resuming and
MMEngine's `load_from` go through `AtomicCheckpointRunner.load_checkpoint`, which applies the same checks): it
checks the file against the size and sha256 recorded in the `summary.json` beside it when there is one, checks
the zip archive's CRCs (a torch checkpoint is a zip; torch itself does not check them, so zeroed bytes would load
silently), and the state dict against the model built from the config, strictly. Every failure is one
`CheckpointError` naming the file and what is wrong: missing, empty, truncated, not a checkpoint, damaged, hash
mismatch, or weights that do not fit the config (another variant: the first keys that differ are named).
Weights load non-strictly only with `strict=False`, which the tools pass only for a flag the user wrote
(`--non-strict`). The file and state-dict checks themselves live in `pipeline.core.runs` (the toy stage's
runs use them too).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core.io import atomic_path
from pipeline.core.manifest import sha256_file
from pipeline.core.runs import (CheckpointError, load_state_checked, read_checkpoint,  # noqa: F401 (re-exported)
                                verify_checkpoint_file)

EXPORTED = ("best", "last")
SUMMARY = "summary.json"


def checkpoint_record(path: str | Path) -> dict[str, Any]:
    """{'sha256', 'bytes'} of a checkpoint file, as `summary.json` records it under `checkpoints`."""
    path = Path(path)
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def recorded_checkpoint(train_dir: str | Path, name: str) -> dict[str, Any] | None:
    """The record of checkpoint `name` ('best.pth' or 'best') in `train_dir/summary.json` (`checkpoints: {best:
    {iter, selected_by, sha256, bytes}, last: {...}}`), or None when there is none (then only the file itself is
    checked)."""
    summary = Path(train_dir) / SUMMARY
    if not summary.is_file():
        return None
    try:
        record = (json.loads(summary.read_text()).get("checkpoints") or {}).get(Path(name).stem)
    except (json.JSONDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{summary}: not a readable training summary ({exc})") from exc
    return record if isinstance(record, dict) else None


def export_weights(source: str | Path, target: str | Path, **meta: Any) -> Path:
    """Write the model weights of MMEngine checkpoint `source` to `target` atomically (temp file + rename).

    The result holds `state_dict` (keys as in `A2UMattor.state_dict()`) and `meta` (the source's iteration plus
    `meta`); it is never visible half-written.
    """
    checkpoint = read_checkpoint(source)
    source_meta = checkpoint.get("meta", {}) or {}
    slim = {"state_dict": checkpoint["state_dict"],
            "meta": {"iter": int(source_meta.get("iter", -1)), "source": Path(source).name, **meta}}
    buffer = io.BytesIO()  # saved from memory, the zip's record names do not depend on the temporary's name:
    torch.save(slim, buffer)  # identical weights give identical bytes (and an unchanged DVC output)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(target)


def load_trained_weights(model: nn.Module, checkpoint: str | Path, config: str | Path, strict: bool = True,
                         verify: bool = True, hint: str = "") -> dict[str, Any]:
    """Load `checkpoint` into `model` (built from `config`): the one checkpoint-loading path of every entry point.

    Checks the file (`verify_checkpoint_file`: present, complete, CRCs, and the size and sha256 recorded in the
    `summary.json` beside it when it is an exported `best.pth`/`last.pth`), then the state dict against the model
    (`pipeline.core.runs.load_state_checked`: missing or unexpected keys and shapes). `strict=False` loads only
    what fits, with a warning; pass it only for a flag the user wrote. `hint` ends a mismatch error (how to ask
    for a non-strict load where the caller offers one). Returns the checkpoint (its `meta` tells the iteration).
    """
    loaded = read_trained_checkpoint(checkpoint, verify=verify)
    load_state_checked(model, loaded["state_dict"], checkpoint, config, strict=strict, hint=hint)
    return loaded


def read_trained_checkpoint(checkpoint: str | Path, verify: bool = True) -> dict[str, Any]:
    """The checkpoint file read and checked as `load_trained_weights` does (against the `summary.json` record
    beside an exported best.pth/last.pth when `verify`), before any model exists."""
    path = Path(checkpoint)
    return read_checkpoint(path, recorded_checkpoint(path.parent, path.name) if verify else None, verify=verify)


def load_matting_model(train_dir: str | Path, which: str = "best", device: str = "cpu", verify: bool = True
                       ) -> nn.Module:
    """Build the trained matting model from `train_dir/config.py` and load `train_dir/<which>.pth`.

    Args:
        train_dir: a train stage output folder (`results/train/<variant>/seed<s>`).
        which: 'best' (lowest validation SAD) or 'last'.
        device: torch device for the model.
        verify: check the file first (`verify_checkpoint_file`, against the sha256 in `summary.json` if any).

    Returns:
        The `A2UMattor` in eval mode; `model(x)` with x N×4×H×W (see `models.matting.inputs`) returns the raw
        alpha N×1×H×W (inputs are padded to a multiple of 16 internally).

    Raises:
        ValueError for an unknown `which`, FileNotFoundError without `config.py`, CheckpointError for a
        checkpoint that is missing, empty, truncated, damaged, not a checkpoint, not the recorded file, or whose
        weights do not fit the config (e.g. another variant's checkpoint).
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
    load_trained_weights(model, train_dir / f"{which}.pth", config_path, verify=verify)
    return model.to(device).eval()
