"""Damaged checkpoints: each fails with one CheckpointError naming the file and what is wrong; nothing loads
silently (torch itself loads a file with zeroed bytes in its middle without a word)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch
from mmengine.config import Config

import tests.test_matting.test_data_matting  # noqa: F401  (registers TinyStandInMattingNet)
from models.registry import MODELS
from pipeline.core.io import write_json
from pipeline.matting.checkpoint import CheckpointError, checkpoint_record, load_matting_model, read_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _config(width: int) -> Config:
    cfg = Config.fromfile(str(REPO / "configs/matting/a2u-matting_r34_2xb8-180k_comp1k-512px_paper.py"))
    cfg.model.network = dict(type="TinyStandInMattingNet", width=width)
    cfg.custom_imports.imports = [*cfg.custom_imports.imports, "tests.test_matting.test_data_matting"]
    return cfg


def make_train_dir(root: Path, width: int = 8, seed: int = 0, record: bool = True) -> Path:
    """A train stage output (config.py, best.pth, last.pth, summary.json) of the stand-in network."""
    root.mkdir(parents=True)
    cfg = _config(width)
    cfg.dump(str(root / "config.py"))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    for name in ("best.pth", "last.pth"):
        torch.save({"state_dict": model.state_dict(), "meta": {"iter": 4}}, root / name)
    checkpoints = {n: {"iter": 4, "selected_by": "test", **(checkpoint_record(root / f"{n}.pth") if record else {})}
                   for n in ("best", "last")}  # the train stage's summary.json format
    write_json(root / "summary.json", {"variant": "stand-in", "checkpoints": checkpoints})
    return root


def _zero_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cut_tail(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _random(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _not_a_state_dict(path: Path) -> None:
    torch.save([1, 2, 3], path)


def _delete(path: Path) -> None:
    path.unlink()


def _other_run(path: Path) -> None:
    """Replace with a valid checkpoint of the same architecture from another run (another seed)."""
    other = make_train_dir(path.parent.parent / "other", seed=1)
    shutil.copy(other / path.name, path)


def _other_variant(path: Path) -> None:
    """Replace with a checkpoint of another network width, and record its hash (a consistent but wrong dir)."""
    other = make_train_dir(path.parent.parent / "wide", width=16)
    shutil.copy(other / path.name, path)
    summary = json.loads((path.parent / "summary.json").read_text())
    summary["checkpoints"][path.stem].update(checkpoint_record(path))
    write_json(path.parent / "summary.json", summary)


CASES: list[tuple[Callable[[Path], None], bool, str]] = [
    # damage, is the sha256 recorded in summary.json, words of the error
    (_delete, True, "checkpoint not found"),
    (_empty, True, r"empty file \(0 bytes\)"),
    (_empty, False, r"empty file \(0 bytes\)"),
    (_truncate, True, "bytes, but .* were recorded"),
    (_truncate, False, "truncated or damaged checkpoint"),
    (_cut_tail, False, "truncated or damaged checkpoint"),
    (_random, True, "sha256 does not match"),
    (_random, False, "not a PyTorch checkpoint"),
    (_zero_middle, True, "sha256 does not match"),
    (_zero_middle, False, "fails its CRC check"),
    (_not_a_state_dict, False, "not a checkpoint with a 'state_dict'"),
    (_other_run, True, "sha256 does not match"),
    (_other_variant, True, r"does not fit .*config\.py \(another variant or config\?\)"),
]


@pytest.mark.parametrize("damage, record, words", CASES,
                         ids=[f"{d.__name__}-{'recorded' if r else 'unrecorded'}" for d, r, _ in CASES])
def test_damaged_checkpoint_names_the_file_and_the_problem(tmp_path: Path, damage, record: bool,
                                                           words: str) -> None:
    train_dir = make_train_dir(tmp_path / "train", record=record)
    damage(train_dir / "best.pth")
    with pytest.raises(CheckpointError, match=rf"{train_dir / 'best.pth'}.*{words}") as info:
        load_matting_model(train_dir, "best")
    assert str(train_dir / "best.pth") in str(info.value)


def test_an_intact_checkpoint_loads_and_verify_can_be_skipped(tmp_path: Path) -> None:
    train_dir = make_train_dir(tmp_path / "train")
    model = load_matting_model(train_dir, "last")
    assert model(torch.zeros(1, 4, 16, 16)).shape == (1, 1, 16, 16)
    _zero_middle(train_dir / "best.pth")
    with pytest.raises(CheckpointError):
        read_checkpoint(train_dir / "best.pth")
    read_checkpoint(train_dir / "best.pth", verify=False)  # what torch alone does: loads the damaged weights


def test_the_evaluate_stage_stops_on_a_damaged_checkpoint_before_writing(tmp_path: Path) -> None:
    import yaml

    from stages.evaluate import main as evaluate_main

    train_dir = make_train_dir(tmp_path / "train" / "seed0")  # the per-seed layout: <model>/seed<s>/
    _zero_middle(train_dir / "best.pth")
    (tmp_path / "data" / "test").mkdir(parents=True)
    params = {"base": {"seed": 6, "profile": "smoke", "device": "cpu"}, "train": {"seeds": [0]},
              "evaluate": {"sets": {}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(CheckpointError, match=r"best\.pth: sha256 does not match"):
        evaluate_main(["x", "--params", str(tmp_path / "params.yaml"), "--model", str(train_dir.parent),
                       "--data", str(tmp_path / "data"), "--out", str(tmp_path / "eval"), "--no-progress"])
    assert not (tmp_path / "eval").exists() and not list(tmp_path.glob(".eval*"))
