"""The toy stage end to end through the real MMEngine Runner (tiny network, generated data), and resume."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from pipeline.toy.datasets import resize_to_32, resolve_idx_dir
from pipeline.toy.runner import PROTOCOL, build_run_config, run_toy
from pipeline.toy.metrics import image_metrics
from stages.toy import main as toy_stage
from tests.test_toy.conftest import TINY_NET, rectangles

QUIET = {"default_hooks.logger.interval": 1000, "log_level": "WARNING"}


def mean_image_psnr() -> float:
    """PSNR of predicting the mean training image for every test image of the `fake_mnist` fixture."""
    train = resize_to_32(rectangles(660, 0)[:594]).numpy()
    test = resize_to_32(rectangles(40, 1)).numpy()
    mean = train.mean(axis=0)
    return float(np.mean([image_metrics(mean, image)["psnr"] for image in test]))


def test_smoke_stage_writes_finite_metrics_that_beat_the_mean_image(tmp_path, fake_mnist):
    params = {"base": {"seed": 0, "profile": "smoke"},
              "toy": {"datasets": ["mnist"], "operators": ["bilinear"], "data_dirs": {"mnist": str(fake_mnist)},
                      "config_overrides": {**TINY_NET, **QUIET, "optim_wrapper.optimizer.lr": 0.05},
                      "budgets": {"smoke": {"subset": None, "val_subset": 30, "test_subset": None, "epochs": 1,
                                            "seeds": [0], "batch_size": 10}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "results" / "toy"
    toy_stage(["--params", str(tmp_path / "params.yaml"), "--out", str(out), "--runs", str(out / "runs"),
               "--no-download"])
    metrics = json.loads((out / "summary.json").read_text())
    assert metrics["protocol"] == PROTOCOL and metrics["profile"] == "smoke" and metrics["seeds"] == [0]
    row = metrics["results"]["mnist"]["bilinear"]
    for which in ("best", "last"):
        for key in ("psnr", "ssim", "mae", "mse", "epoch"):
            assert math.isfinite(row[which][key]["mean"]) and row[which][key]["std"] == 0.0
    assert row["params"] > 0 and row["best"]["epoch"]["mean"] == 1.0
    assert row["best"]["psnr"]["mean"] > mean_image_psnr() + 0.5
    assert "protocol: ours (modelled on the authors' group harness)" in (out / "table.md").read_text()
    assert (out / "grid.png").stat().st_size > 1000
    assert json.loads((out / "run.json").read_text())["stage"] == "toy"
    # the DVC metrics: one flat file per operator and measure, a number per dataset (the best checkpoint's)
    assert json.loads((out / "psnr" / "bilinear.json").read_text()) == {"mnist": row["best"]["psnr"]["mean"]}
    assert json.loads((out / "ssim" / "bilinear.json").read_text()) == {"mnist": row["best"]["ssim"]["mean"]}


class Interrupted(RuntimeError):
    """Stands in for a killed process."""


@HOOKS.register_module(force=True)
class InterruptAfterFirstEpoch(Hook):
    """Raises once epoch 1 is trained, checkpointed and validated, while `armed` is set."""

    armed = False

    def after_val_epoch(self, runner, metrics=None) -> None:
        if InterruptAfterFirstEpoch.armed and runner.epoch == 1:
            raise Interrupted("simulated interruption")


@pytest.fixture()
def run_config(fake_mnist):
    files = resolve_idx_dir("mnist", {"mnist": str(fake_mnist)}, allow_download=False)

    def make(work_dir):
        return build_run_config(dataset_files=files, operator="bilinear", seed=3, epochs=2, batch_size=20,
                                counts={"train": 200, "val": 30, "test": 20}, work_dir=work_dir, dvclive=False,
                                overrides={**TINY_NET, **QUIET,
                                           "custom_hooks": [dict(type="ExactResumeHook"),
                                                            dict(type="InterruptAfterFirstEpoch", priority="LOWEST")]})
    return make


def test_resumed_run_matches_uninterrupted_run(tmp_path, run_config):
    InterruptAfterFirstEpoch.armed = False
    straight = run_toy(run_config(tmp_path / "straight"))
    InterruptAfterFirstEpoch.armed = True
    with pytest.raises(Interrupted):
        run_toy(run_config(tmp_path / "resumed"))
    (run_dir,) = (tmp_path / "resumed").iterdir()                   # <root>/<fingerprint>
    assert (run_dir / "epoch_1.pth").is_file()
    InterruptAfterFirstEpoch.armed = False
    resumed = run_toy(run_config(tmp_path / "resumed"))
    assert resumed["resumed"] and not straight["resumed"] and resumed["run_dir"] == str(run_dir)
    for which in ("best", "last"):
        assert resumed[which] == pytest.approx(straight[which], rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(np.load(run_dir / "grid.npy"), np.load(Path(straight["run_dir"]) / "grid.npy"),
                               atol=1e-6)
    assert not list(run_dir.glob("*.pth"))                           # checkpoints dropped once finished
    again = run_toy(run_config(tmp_path / "resumed"))                # finished: reused, not retrained
    assert again == {**json.loads((run_dir / "result.json").read_text()), "reused": True}


def test_parallel_runs_give_the_results_of_sequential_runs(tmp_path, fake_mnist):
    """`toy.workers` only changes speed: two processes give the numbers one process gives (1 thread per run)."""
    from pipeline.core.params import build
    from pipeline.toy.params import ToyParams
    from pipeline.toy.runner import run_track

    def track(workers: int) -> dict:
        toy = build(ToyParams, {"datasets": ["mnist"], "operators": ["bilinear", "a2u"], "seeds": [0, 1],
                                "data_dirs": {"mnist": str(fake_mnist)}, "subset": 120, "val_subset": 30,
                                "test_subset": 20, "epochs": 2, "batch_size": 20, "workers": workers,
                                "config_overrides": {**QUIET, "model.channels": (32, 32, 32),
                                                     "model.mid_channels": 16}}, "toy")  # a2u: GroupNorm(32)
        summary, _ = run_track(toy, tmp_path / f"runs{workers}", allow_download=False, dvclive=False)
        return summary["results"]["mnist"]

    one, two = track(1), track(2)
    for operator in ("bilinear", "a2u"):
        for key in ("best", "last", "per_seed", "curve", "params"):
            assert one[operator][key] == two[operator][key], (operator, key)
    assert one["a2u"]["paired"]["diffs"] == two["a2u"]["paired"]["diffs"] and len(one["a2u"]["curve"]["psnr"]) == 2
