"""Checkpoints of matting training: export slim weights atomically, verify them, load a trained model.

MMEngine keeps full checkpoints (`iter_<n>.pth`, `best_val_sad_iter_<n>.pth`, written atomically by
`pipeline.core.runs.AtomicCheckpointRunner`) in the training work dir. The train stage exports slim copies —
`{'state_dict': ..., 'meta': {...}}`, no optimiser state — as `best.pth` and `last.pth` next to `config.py` in
`results/train/<variant>/seed<s>/`, and records each one's sha256 and size in `summary.json` (`checkpoints.best`,
`checkpoints.last`).

`load_matting_model(train_dir, which, verify=True)` is the one way to get a trained model back (evaluation,
test and demo tools): it checks the file against the recorded sha256 when there is one, checks the zip archive's
CRCs (a torch checkpoint is a zip; torch itself does not check them, so zeroed bytes would load silently), and
turns every load failure into a `CheckpointError` naming the file and what is wrong: missing, empty,
truncated, not a checkpoint, damaged, hash mismatch, or weights that do not fit `config.py` (another variant).
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.core.compat import allow_mmengine_checkpoint_globals
from pipeline.core.io import atomic_path
from pipeline.core.manifest import sha256_file

EXPORTED = ("best", "last")
SUMMARY = "summary.json"
#: The first bytes of a zip archive (torch.save's format since torch 1.6).
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong with it."""


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


def verify_checkpoint_file(path: str | Path, expected: dict[str, Any] | None = None) -> None:
    """Check a checkpoint file's bytes before unpickling: present, non-empty, the recorded sha256 and size
    (when `expected` is given), a complete zip archive whose members pass their CRC check."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes); the checkpoint was not written completely")
    if expected is not None:
        if "bytes" in expected and size != expected["bytes"]:
            raise CheckpointError(f"{path}: {size} bytes, but {expected['bytes']} were recorded at export "
                                  "(truncated or replaced)")
        if expected.get("sha256") and sha256_file(path) != expected["sha256"]:
            raise CheckpointError(f"{path}: sha256 does not match the one recorded at export ({expected['sha256']}):"
                                  " the file was damaged or replaced")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != _ZIP_MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (no zip archive header; another format or random "
                              "bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({size} bytes; the zip archive is "
                              f"incomplete: {exc})") from exc
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (member '{bad}' fails its CRC check)")


def read_checkpoint(path: str | Path, expected: dict[str, Any] | None = None, verify: bool = True
                    ) -> dict[str, Any]:
    """Load a checkpoint on the CPU with weights-only unpickling; every failure is a CheckpointError naming it.

    `verify` runs `verify_checkpoint_file` first (with the `expected` sha256/size when given).
    """
    path = Path(path)
    if verify:
        verify_checkpoint_file(path, expected)
    elif not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    allow_mmengine_checkpoint_globals()
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot be loaded as a PyTorch checkpoint ({type(exc).__name__}: "
                              f"{first})") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a checkpoint with a 'state_dict' entry")
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
    buffer = io.BytesIO()  # saved from memory, the zip's record names do not depend on the temporary's name:
    torch.save(slim, buffer)  # identical weights give identical bytes (and an unchanged DVC output)
    with atomic_path(target) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(target)


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
    path = train_dir / f"{which}.pth"
    expected = recorded_checkpoint(train_dir, path.name) if verify else None
    state = read_checkpoint(path, expected, verify=verify)["state_dict"]
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a shape mismatch raises even when strict=False
        detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:4])
        raise CheckpointError(f"{path} does not fit {config_path} (another variant or config?): {detail}") from exc
    if missing or unexpected:
        raise CheckpointError(f"{path} does not fit {config_path} (another variant or config?): missing keys "
                              f"{missing[:5]}, unexpected keys {unexpected[:5]}")
    return model.to(device).eval()
