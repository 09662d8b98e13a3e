"""A run is never silently reused: changed data gives a fresh run, a forced rerun retrains (matting and toy),
and the toy stage still reuses the finished runs of an invocation that adds a run."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.hooks import Hook

from pipeline.core.io import read_alpha, write_image, write_json
from pipeline.core.manifest import file_record, set_hash
from pipeline.core.params import build
from pipeline.matting.params import TrainParams
from pipeline.matting.train import export_training, profile_config, run_training, training_config
from pipeline.toy.params import ToyParams
from pipeline.toy.runner import run_track
from tests.test_matting.test_data_matting import make_composed_data
from tests.test_toy.conftest import TINY_NET, write_fake_mnist


_RUNS = itertools.count()


class _CountIterations(Hook):
    def __init__(self) -> None:
        self.iterations = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.iterations += 1


def _train(data: Path, work: Path, out: Path) -> tuple[int, dict]:
    """One train-stage invocation of the stand-in network (2 iterations): (iterations trained, summary)."""
    params = TrainParams(iters=2, val_interval=2, crop=32, batch_size=2, lr=0.01, num_workers=0,
                         val_source="composed", encoder_weights="none")
    # one experiment name per run: MMEngine's MessageHub is per name and process, and would carry the previous
    # run's best score into this one (no new best checkpoint); the stage runs one training per process
    cfg = training_config(profile_config("paper"), params, seed=0, data_root=data, work_root=work,
                          extra={"model.network": dict(_delete_=True, type="TinyStandInMattingNet"),
                                 "experiment_name": f"fresh_{next(_RUNS)}"})
    counter = _CountIterations()
    result = run_training(cfg, extra_hooks=[counter])
    export_training(result, out, summary={"variant": "stand-in"})
    return counter.iterations, json.loads((out / "summary.json").read_text())


def _change_one_alpha(data: Path) -> None:
    """Edit the composed set in place as a recomposition would, summary.json's set_hash included."""
    path = data / "train" / "alpha" / "fg0.png"
    alpha = read_alpha(path)
    alpha[:4] = 255 - alpha[:4]
    write_image(path, alpha)
    records = [file_record(data, p, p.relative_to(data).parts[0], "file", [])
               for p in sorted(data.rglob("*")) if p.is_file() and p.name != "summary.json"]
    write_json(data / "summary.json", {"source": "test", "set_hash": set_hash(records)})


def test_matting_reruns_retrain_and_changed_data_never_reuses(tmp_path: Path) -> None:
    data = make_composed_data(tmp_path / "composed")
    work, out = tmp_path / "work", tmp_path / "out"
    trained, first = _train(data, work, out)
    assert trained == 2 and first["resumed_from"] is None
    first_dir = Path(first["work_dir"])
    assert (first_dir / "result.json").is_file()  # the run is marked finished only after its export

    # the stage runs again with everything unchanged (dvc repro -f, or lost outputs): a fresh run, not a reuse
    trained, again = _train(data, work, out)
    assert trained == 2 and again["resumed_from"] is None
    assert Path(again["work_dir"]).name == f"{first_dir.name}.2" and not first_dir.exists()
    assert again["checkpoints"] == first["checkpoints"]  # the same weights, byte for byte (sha256 recorded)

    # the data changes (new set_hash): a new fingerprint, trained from scratch (the bug: 0 iterations, old model)
    _change_one_alpha(data)
    trained, changed = _train(data, work, out)
    assert trained == 2 and changed["resumed_from"] is None
    assert Path(changed["work_dir"]).name.split(".")[0] != first_dir.name
    assert [p.name for p in work.iterdir()] == [Path(changed["work_dir"]).name]  # older runs pruned


@pytest.fixture()
def toy_setup(tmp_path: Path):
    mnist = write_fake_mnist(tmp_path / "mnist", n_train=120, n_test=20)

    def params(operators: list[str]) -> ToyParams:
        return build(ToyParams, {"datasets": ["mnist"], "operators": operators, "data_dirs": {"mnist": str(mnist)},
                                 "subset": 60, "val_subset": 20, "test_subset": 10, "epochs": 1, "seeds": [0],
                                 "batch_size": 20,
                                 "config_overrides": {**TINY_NET, "default_hooks.logger.interval": 1000,
                                                      "log_level": "WARNING"}}, "toy")
    return params, mnist, tmp_path / "runs"


def _run_folders(runs: Path, operator: str) -> dict[str, float]:
    """{run folder name: mtime of its result.json} of one operator's seed-0 runs."""
    root = runs / "mnist" / operator / "seed0"
    return {p.name: (p / "result.json").stat().st_mtime_ns for p in sorted(root.iterdir())}


def test_toy_reuses_only_while_something_else_changed(toy_setup) -> None:
    params, mnist, runs = toy_setup
    run = dict(allow_download=False, dvclive=False)
    first, _ = run_track(params(["bilinear"]), runs, **run)
    (name,) = _run_folders(runs, "bilinear")

    # every run of the invocation would be reused: the stage was forced (or lost its outputs), so it retrains
    again, _ = run_track(params(["bilinear"]), runs, **run)
    assert list(_run_folders(runs, "bilinear")) == [f"{name}.2"]
    assert again["results"] == first["results"]  # deterministic on the CPU: the same numbers, trained again

    # an operator is added: the finished bilinear run is reused (not retrained), the new one trains
    before = _run_folders(runs, "bilinear")
    added, _ = run_track(params(["bilinear", "nearest"]), runs, **run)
    assert _run_folders(runs, "bilinear") == before and len(_run_folders(runs, "nearest")) == 1
    assert added["results"]["mnist"]["bilinear"] == first["results"]["mnist"]["bilinear"]

    # the IDX data change: the fingerprint changes, the run trains afresh
    write_fake_mnist(mnist, n_train=120, n_test=20, seed=5)
    changed, _ = run_track(params(["bilinear"]), runs, **run)
    (new_name,) = _run_folders(runs, "bilinear")
    assert new_name.split(".")[0] != name
    assert changed["results"]["mnist"]["bilinear"] != first["results"]["mnist"]["bilinear"]
