"""Matting training through MMEngine's Runner on tiny generated data (crop 32, a few iterations).

Covers: the loss goes down on a fixed batch; SIGKILL between checkpoints and in the middle of writing one,
then a rerun, ends with weights identical to an uninterrupted run and never shows a half-written checkpoint;
a 2-process gloo run ends with identical parameters on both ranks; the exported model loads back
(`load_matting_model`); the real `A2UMattingNet` trains at a tiny size.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from mmengine.dataset import default_collate
from mmengine.hooks import Hook

from models.registry import OPERATOR_PAIRS
from pipeline.matting.dataset import OnlineCompositionDataset
from pipeline.core.runs import find_resume_checkpoint
from pipeline.matting.checkpoint import load_matting_model, read_checkpoint
from pipeline.matting.params import TrainParams
from pipeline.matting.train import export_training, profile_config, run_training, training_config
from tests.test_matting.test_data_matting import TRAIN_PIPELINE, make_composed_data

REPO = Path(__file__).resolve().parents[2]
STAND_IN = {"model.network": dict(_delete_=True, type="TinyStandInMattingNet")}


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_composed_data(tmp_path_factory.mktemp("composed_train"))


def _fixed_batch(composed: Path) -> dict:
    import numpy as np

    np.random.seed(123)
    dataset = OnlineCompositionDataset(data_root=str(composed / "train"), pipeline=TRAIN_PIPELINE)
    return default_collate([dataset[i] for i in range(3)])


class _FixedBatchLossHook(Hook):
    """Records the eval-mode loss on one fixed batch before and after training."""

    def __init__(self, batch: dict) -> None:
        self.batch, self.losses = batch, []

    def _record(self, runner) -> None:
        model = runner.model
        model.eval()
        with torch.no_grad():
            losses = model(self.batch["inputs"], self.batch["data_samples"], mode="loss")
        model.train()
        self.losses.append(float(sum(losses.values())))

    def before_train(self, runner) -> None:
        self._record(runner)

    def after_train(self, runner) -> None:
        self._record(runner)


def _reference_config(data_root: Path, work_root: Path, launcher: str = "none"):
    """The run every test here shares: the paper recipe scaled to 6 iterations, stand-in network, validation on
    the composed val split + checkpoint every 2."""
    params = TrainParams(iters=6, val_interval=2, crop=32, batch_size=2, lr=0.01, num_workers=0,
                         val_source="composed", encoder_weights="none")
    return training_config(profile_config("paper"), params, seed=0, data_root=data_root, work_root=work_root,
                           launcher=launcher, extra={"model.network": dict(_delete_=True, type="TinyStandInMattingNet")})


@pytest.fixture(scope="module")
def reference(composed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An uninterrupted in-process run of `_reference_config`, exported like the train stage does."""
    root = tmp_path_factory.mktemp("reference")
    hook = _FixedBatchLossHook(_fixed_batch(composed))
    result = run_training(_reference_config(composed, root / "work"), extra_hooks=[hook])
    out = export_training(result, root / "out", summary={"variant": "stand-in"})
    lrs = [group["lr"] for group in result.runner.optim_wrapper.optimizer.param_groups]
    return {"out": out, "losses": hook.losses, "final_val": result.final_val, "lrs": lrs,
            "state": {k: v.clone() for k, v in result.runner.model.state_dict().items()},
            "batch": hook.batch}


def test_runner_lowers_the_loss_and_exports_a_loadable_model(reference: dict) -> None:
    before, after = reference["losses"]
    assert after < 0.95 * before, (before, after)
    assert set(reference["final_val"]) == {"sad", "mse"} and reference["final_val"]["sad"] > 0
    # two ×0.1 steps, at iterations 4 and 5 (2/3 and 13/15 of 6)
    assert all(lr == pytest.approx(1e-4) for lr in reference["lrs"])
    out = reference["out"]
    assert {p.name for p in out.iterdir()} >= {"best.pth", "last.pth", "config.py", "train_log.txt",
                                               "summary.json", "dvclive"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final_val"] == reference["final_val"] and summary["resumed_from"] is None
    sad_curve = (out / "dvclive" / "plots" / "metrics" / "val" / "sad.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in sad_curve] == ["step", "2", "4", "6"]
    model = load_matting_model(out, "last")
    assert not model.training
    assert all(torch.equal(value, reference["state"][key]) for key, value in model.state_dict().items())
    x = reference["batch"]["inputs"][:1, :, :20, :30]
    assert model(x).shape == (1, 1, 20, 30)
    with pytest.raises(ValueError, match="which"):
        load_matting_model(out, "middle")


DRIVER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    import torch
    import mmengine.runner.runner as mm_runner
    from mmengine.runner.loops import IterBasedTrainLoop
    import tests.test_matting.test_data_matting  # registers TinyStandInMattingNet
    from pipeline.matting.train import export_training, run_training

    mode, data_root, work_root, out_dir = sys.argv[1:5]
    if mode == "kill-after-iter-3":
        original_run_iter = IterBasedTrainLoop.run_iter
        def run_iter(self, data_batch):
            original_run_iter(self, data_batch)
            if self._iter == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        IterBasedTrainLoop.run_iter = run_iter
    if mode == "kill-while-saving-iter-4":
        original_save = mm_runner.save_checkpoint
        def save_checkpoint(checkpoint, filename, *args, **kwargs):
            if "iter_4" in os.path.basename(filename):
                original_save(checkpoint, filename, *args, **kwargs)
                data = Path(filename).read_bytes()
                Path(filename).write_bytes(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            return original_save(checkpoint, filename, *args, **kwargs)
        mm_runner.save_checkpoint = save_checkpoint
    torch.set_num_threads(int(os.environ["TEST_TORCH_THREADS"]))
    from tests.test_matting.test_train_matting import _reference_config
    result = run_training(_reference_config(data_root, work_root, "pytorch" if mode == "ddp" else "none"))
    export_training(result, out_dir, summary={{"mode": mode}})
    model = result.runner.model.module if hasattr(result.runner.model, "module") else result.runner.model
    rank = int(os.environ.get("RANK", "0"))
    torch.save({{k: v.detach().clone() for k, v in model.named_parameters()}}, Path(out_dir + f".rank{{rank}}.pt"))
""")


def _drive(driver: Path, mode: str, composed: Path, work: Path, out: Path, torchrun: bool = False
           ) -> subprocess.CompletedProcess:
    threads = "1" if torchrun else str(torch.get_num_threads())  # bitwise equality needs the same thread count
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": threads, "TEST_TORCH_THREADS": threads}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"] \
        if torchrun else [sys.executable]
    return subprocess.run([*prefix, str(driver), mode, str(composed), str(work), str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)


def _assert_visible_checkpoints_complete(work: Path) -> None:
    for path in work.rglob("*.pth"):
        if not path.name.startswith("."):
            read_checkpoint(path)  # raises on a truncated file


def test_sigkill_and_rerun_match_an_uninterrupted_run(composed: Path, reference: dict, tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    work, out = tmp_path / "work", tmp_path / "out"
    killed = _drive(driver, "kill-after-iter-3", composed, work, out)
    assert killed.returncode == -9, killed.stderr[-3000:]
    run_dir = next(work.iterdir())
    assert find_resume_checkpoint(run_dir).name == "iter_2.pth"
    _assert_visible_checkpoints_complete(work)

    killed = _drive(driver, "kill-while-saving-iter-4", composed, work, out)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (run_dir / ".iter_4.pth.tmp").is_file() and not (run_dir / "iter_4.pth").exists()
    _assert_visible_checkpoints_complete(work)
    assert not out.exists()

    resumed = _drive(driver, "resume", composed, work, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Advance dataloader 2 steps" in resumed.stdout + resumed.stderr
    for which in ("best", "last"):
        expected = read_checkpoint(reference["out"] / f"{which}.pth")["state_dict"]
        got = read_checkpoint(out / f"{which}.pth")["state_dict"]
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), which
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"].endswith("iter_2.pth") and summary["final_val"] == reference["final_val"]
    for curve in ("loss.tsv", "val/sad.tsv"):  # steps logged twice around the kills are trimmed on resume
        expected = (reference["out"] / "dvclive" / "plots" / "metrics" / curve).read_text()
        assert (out / "dvclive" / "plots" / "metrics" / curve).read_text() == expected, curve


def test_two_process_gloo_run_keeps_ranks_identical(composed: Path, tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    done = _drive(driver, "ddp", composed, tmp_path / "work", tmp_path / "out", torchrun=True)
    assert done.returncode == 0, done.stderr[-4000:]
    rank0 = torch.load(tmp_path / "out.rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "out.rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() and len(rank0) > 0
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    exported = read_checkpoint(tmp_path / "out" / "last.pth")["state_dict"]
    assert all(torch.equal(exported[f"network.{k}" if not k.startswith("network.") else k], v)
               for k, v in rank0.items())
    assert len(list((tmp_path / "work").rglob("iter_6.pth"))) == 1


@pytest.mark.skipif("bilinear" not in OPERATOR_PAIRS.module_dict,
                    reason="the 'bilinear' operator pair is not registered yet (models/ops)")
def test_train_stage_with_the_real_network_at_a_tiny_size(composed: Path, tmp_path: Path) -> None:
    from stages.train import main

    params = {"base": {"seed": 6, "profile": "smoke"},
              "train": {"variants": ["bilinear"], "lr": 0.01, "iters": 2, "crop": 32, "batch_size": 2,
                        "val_interval": 2, "num_workers": 0}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["bilinear", "--seed", "0", "--params", str(tmp_path / "params.yaml"), "--data", str(composed),
          "--out", str(tmp_path / "results" / "bilinear"), "--work", str(tmp_path / "work" / "bilinear")])
    out = tmp_path / "results" / "bilinear"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == "smoke" and summary["iters"] == 2 and summary["crop"] == 32
    assert summary["params"] == 8_049_003 and set(summary["final_val"]) == {"sad", "mse"}
    assert json.loads((out / "run.json").read_text())["stage"] == "train"
    assert summary["encoder_init"] == {"checkpoint": None, "init": "random"}
    assert "encoder: random init" in (out / "train_log.txt").read_text()
    assert summary["checkpoints"]["best"]["iter"] == summary["checkpoints"]["last"]["iter"] == 2
    checkpoint = read_checkpoint(next((tmp_path / "work" / "bilinear").rglob("iter_2.pth")))
    lrs = sorted(group["lr"] for group in checkpoint["optimizer"]["param_groups"])
    assert lrs[0] == pytest.approx(lrs[-1] / 100)  # the encoder learns at lr / 100
    model = load_matting_model(out, "best")
    assert type(model.network).__name__ == "A2UMattingNet"
    assert model(torch.zeros(1, 4, 40, 56)).shape == (1, 1, 40, 56)
    with pytest.raises(ValueError, match="train.variants"):
        main(["a2u", "--seed", "0", "--params", str(tmp_path / "params.yaml")])
    with pytest.raises(ValueError, match="train.seeds"):
        main(["bilinear", "--seed", "7", "--params", str(tmp_path / "params.yaml")])
