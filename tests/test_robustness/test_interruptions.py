"""`kill -9` at several points of every stage, then a rerun: it succeeds, its outputs equal an uninterrupted
run's, and no temporary is left behind (each stage removes its own stale temporaries when it starts).

Each killed run is a subprocess (`kill_driver.py`) that SIGKILLs itself at a patched function; reruns go
through the same driver; the uninterrupted reference runs in this process. Smoke sizes throughout.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.core.io import write_image
from pipeline.matting.checkpoint import read_checkpoint
from tests.test_matting.test_data_matting import make_composed_data
from tests.test_robustness.test_checkpoints import make_train_dir
from tests.test_toy.conftest import TINY_NET, write_fake_mnist

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("kill_driver.py")
pytestmark = pytest.mark.slow


def drive(kill: str, stage: str, args: list[str], cwd: Path = REPO) -> None:
    """Run `stage` through the driver; a `kill` spec must end in SIGKILL, `none` in success."""
    threads = str(torch.get_num_threads())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": threads, "TEST_TORCH_THREADS": threads}
    done = subprocess.run([sys.executable, str(DRIVER), kill, stage, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    expected = 0 if kill == "none" else -9
    assert done.returncode == expected, f"{stage} with {kill}: rc {done.returncode}\n{done.stderr[-4000:]}"


def leftovers(*roots: Path) -> list[Path]:
    """Hidden temporaries of the outputs `roots`: `.<name>.*` beside each, `.*.tmp` / `.*.old` inside it."""
    found = set()
    for root in roots:
        if root.parent.is_dir():
            found |= set(root.parent.glob(f".{root.name}.*"))
        if root.is_dir():
            found |= {p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old"))}
    return sorted(found)


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{relative path: sha256} of every file under `root` (names in `skip` left out)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in skip}


def _params(path: Path, sections: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"base": {"seed": 1, "profile": "smoke", "device": "cpu"}, **sections}))
    return path


# ------------------------------------------------------------------------------------------- compose
def test_compose_recovers_from_kills(tmp_path: Path) -> None:
    from stages.compose import main as compose

    params = _params(tmp_path / "params.yaml", {"compose": {"source": "synthetic", "budgets": {"smoke": {
        "n_train_fg": 2, "n_val": 1, "n_test": 2, "size": 48}}}})

    def args(root: Path) -> list[str]:
        return ["--params", str(params), "--data", str(root / "data" / "composed"), "--results",
                str(root / "results" / "compose"), "--workers", "1"]

    compose(args(tmp_path / "ref"))
    reference = tree(tmp_path / "ref" / "data" / "composed")
    sheet = (tmp_path / "ref" / "results" / "compose" / "contact_sheet.png").read_bytes()
    run = tmp_path / "run"
    data = run / "data" / "composed"

    drive("pipeline.compose.composite:write_image:5", "compose", args(run))  # mid-composition
    assert [p.name.split(".")[1] for p in leftovers(data)] == ["composed"] and not data.exists()
    drive("none", "compose", args(run))
    assert tree(data) == reference and not leftovers(data, run / "results" / "compose")

    drive("shutil:rmtree:1:before", "compose", args(run))  # between the swap and removing the old set
    assert [p.name for p in leftovers(data)] == [".composed.old"]
    drive("none", "compose", args(run))
    assert tree(data) == reference and not leftovers(data, run / "results" / "compose")
    assert (run / "results" / "compose" / "contact_sheet.png").read_bytes() == sheet


# ------------------------------------------------------------------------------------------- train
@pytest.fixture(scope="module")
def stand_in_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke recipe with the tiny stand-in network (registered by its module, imported by the config)."""
    from mmengine.config import Config

    base = REPO / "configs" / "matting" / "a2u-matting_r34_1xb2-4i_synthetic-64px_smoke.py"
    imports = Config.fromfile(str(base)).custom_imports.imports + ["tests.test_robustness.stand_in"]
    path = tmp_path_factory.mktemp("configs") / "stand-in_smoke.py"
    path.write_text(f"_base_ = [{str(base)!r}]\n"
                    "model = dict(network=dict(_delete_=True, type='TinyVariantStandIn'))\n"
                    f"custom_imports = dict(imports={imports!r}, allow_failed_imports=False)\n")
    return path


def test_train_recovers_from_kills(tmp_path: Path, stand_in_config: Path) -> None:
    data = make_composed_data(tmp_path / "composed")
    params = _params(tmp_path / "params.yaml", {"train": {
        "variants": ["a2u"], "config": str(stand_in_config), "iters": 4, "crop": 32, "batch_size": 2,
        "val_interval": 2, "num_workers": 0, "flops_size": 32, "val_source": "composed", "encoder_weights": "none"}})

    def args(root: Path) -> list[str]:
        return ["a2u", "--seed", "0", "--params", str(params), "--data", str(data),
                "--out", str(root / "results" / "train" / "a2u"), "--work", str(root / "work" / "a2u")]

    # the reference runs in a fresh process too: in this one, earlier tests' BLAS calls fixed MKL's mode before
    # the train stage could pin it (pin_math_env), so an in-process reference can differ in the last digits
    drive("none", "train", args(tmp_path / "ref"))
    reference = tmp_path / "ref" / "results" / "train" / "a2u"
    run = tmp_path / "run"
    out, work = run / "results" / "train" / "a2u", run / "work" / "a2u"

    drive("mmengine.runner.loops:IterBasedTrainLoop.run_iter:3", "train", args(run))  # between checkpoints
    drive("pipeline.matting.train:export_weights:1", "train", args(run))  # best.pth written, export unfinished
    (partial,) = leftovers(out)
    assert partial.name.startswith(".a2u.") and (partial / "best.pth").is_file() and not out.exists()
    drive("none", "train", args(run))
    assert not leftovers(out, work) and [p.name for p in out.parent.iterdir()] == ["a2u"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from"].endswith("iter_4.pth")  # the interrupted run resumed; it was not redone
    assert summary["final_val"] == json.loads((reference / "summary.json").read_text())["final_val"]
    for name in ("best.pth", "last.pth"):
        expected, got = (read_checkpoint(d / name)["state_dict"] for d in (reference, out))
        assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected), name


# ------------------------------------------------------------------------------------------- evaluate
def _test_split(root: Path) -> Path:
    rng = np.random.default_rng(3)
    for name in ("a", "b", "c"):
        alpha = np.zeros((24, 32), np.uint8)
        alpha[6:18, 8:24] = 255
        alpha[5, 8:24] = 120
        trimap = np.where(alpha == 0, 0, np.where(alpha == 255, 255, 128)).astype(np.uint8)
        for kind, array in (("image", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)), ("alpha", alpha),
                            ("trimap", trimap)):
            write_image(root / "test" / kind / f"{name}.png", array)
    (root / "test" / "list.txt").write_text("a\nb\nc\n")
    return root


def test_evaluate_recovers_from_kills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stages.evaluate import main as evaluate

    model = make_train_dir(tmp_path / "train" / "a2u" / "seed0").parent
    data = _test_split(tmp_path / "composed")
    params = _params(tmp_path / "params.yaml", {"train": {"seeds": [0]},
                                                "evaluate": {"sets": {}, "tile": None, "tile_check": 32}})

    def args(root: Path) -> list[str]:
        return ["a2u", "--params", str(params), "--model", str(model), "--data", str(data), "--out",
                str(root / "results" / "eval" / "a2u"), "--no-progress"]

    evaluate(args(tmp_path / "ref"))
    reference = tmp_path / "ref" / "results" / "eval" / "a2u"
    run = tmp_path / "run"
    out = run / "results" / "eval" / "a2u"

    drive("pipeline.matting.evaluate:write_image:1", "evaluate", args(run))  # after the first prediction
    assert len(leftovers(out)) == 1 and not out.exists()
    drive("pipeline.matting.evaluate:write_json:1", "evaluate", args(run))  # metrics written, tiled check not
    assert len(leftovers(out)) == 1  # the first kill's folder was removed when the second run started
    drive("none", "evaluate", args(run))
    assert not leftovers(out) and [p.name for p in out.parent.iterdir()] == ["a2u"]
    assert tree(out / "seeds" / "seed0" / "pred") == tree(reference / "seeds" / "seed0" / "pred")
    assert (out / "metrics.json").read_text() == (reference / "metrics.json").read_text()
    got, expected = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    for key in ("sad", "mse", "grad", "conn", "n_images", "n_failed"):
        assert got["sets"]["test"][key] == expected["sets"]["test"][key], key
    assert got["tiled_check"]["sad"] == expected["tiled_check"]["sad"]


# ------------------------------------------------------------------------------------------- toy
def test_toy_recovers_from_kills(tmp_path: Path) -> None:
    from stages.toy import main as toy

    mnist = write_fake_mnist(tmp_path / "mnist", n_train=120, n_test=20)
    params = _params(tmp_path / "params.yaml", {"toy": {
        "datasets": ["mnist"], "operators": ["bilinear"], "data_dirs": {"mnist": str(mnist)},
        "config_overrides": {**TINY_NET, "default_hooks.logger.interval": 1000, "log_level": "WARNING"},
        "budgets": {"smoke": {"subset": 60, "val_subset": 20, "test_subset": 10, "epochs": 1, "seeds": [0],
                              "batch_size": 20}}}})

    def args(root: Path) -> list[str]:
        out = root / "results" / "toy"
        return ["--params", str(params), "--out", str(out), "--runs", str(out / "runs"), "--no-download",
                "--no-dvclive"]

    toy(args(tmp_path / "ref"))
    reference = json.loads((tmp_path / "ref" / "results" / "toy" / "summary.json").read_text())
    out = tmp_path / "run" / "results" / "toy"

    drive("mmengine.runner.runner:save_checkpoint:1", "toy", args(tmp_path / "run"))  # epoch 1 saved, not renamed
    assert [p.name for p in leftovers(out)] == [".epoch_1.pth.tmp"]
    drive("stages.toy:write_text:1:before", "toy", args(tmp_path / "run"))  # every run finished, summary written
    assert not (out / "table.md").exists() and not leftovers(out)
    drive("none", "toy", args(tmp_path / "run"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"] == reference["results"] and (out / "table.md").is_file() and not leftovers(out)


# ------------------------------------------------------------------------------------------- bench
def test_bench_recovers_from_a_kill(tmp_path: Path) -> None:
    params = _params(tmp_path / "params.yaml", {"bench": {
        "operators": ["bilinear"], "network_variants": ["bilinear"], "threads": 1, "repeats": 1, "batch_sizes": [1],
        "op_matting_sizes": [32], "op_include_toy": False, "network_sizes": [32], "metrics_size": 32,
        "metrics_repeats": 1, "export": False, "ratio_threads": [1], "step_repeats": 1, "toy_step_batches": [2],
        "matting_step_cases": [[2, 32]], "network_repeats": 1, "floor": False}})
    out, metrics = tmp_path / "results" / "bench" / "details", tmp_path / "results" / "bench" / "ratios"
    args = ["--params", str(params), "--out", str(out), "--metrics", str(metrics)]
    drive("pipeline.bench.run:write_json:2", "bench", args)
    assert len(leftovers(out)) == 1 and not out.exists()
    drive("none", "bench", args)
    assert not leftovers(out, metrics) and metrics.is_dir()  # (no a2u here: no ratio files)
    assert {p.name for p in out.iterdir()} == {"ops.json", "steps.json", "networks.json", "floor.json", "targets.json",
                                               "table.md", "ratios.png", "operators.json", "run.json"}


# ------------------------------------------------------------------------------------------- report
def test_report_recovers_from_kills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stages.report import main as report
    from tests.test_report.test_report import _fake_results

    params = _params(tmp_path / "params.yaml", {"report": {"title": "t", "qualitative_images": 2}})
    for root in (tmp_path / "ref", tmp_path / "run"):
        _fake_results(root)
    monkeypatch.chdir(tmp_path / "ref")
    report(["--params", str(params)])
    results = tmp_path / "run" / "results"
    drive("stages.report:render_html:1", "report", ["--params", str(params)], cwd=tmp_path / "run")
    assert [p.name.split(".")[1] for p in leftovers(results / "report")] == ["report"]
    drive("stages.report:write_text:2", "report", ["--params", str(params)], cwd=tmp_path / "run")
    assert (results / "report.md").is_file() and not (results / "report.html").exists()
    # another stage's interrupted export (train's `.bilinear.<random>.tmp`) is not a variant of the report
    phantom = results / "train" / ".bilinear.abcd1234.tmp"
    shutil.copytree(results / "train" / "bilinear", phantom)
    shutil.copytree(results / "eval" / "a2u", results / "eval" / ".a2u.abcd1234.tmp")
    (results / "eval" / ".a2u.abcd1234.tmp" / "run.json").write_text('{"wall_time_s": 1.0}')
    drive("none", "report", ["--params", str(params)], cwd=tmp_path / "run")
    assert not leftovers(results / "report", results / "report.md")
    assert ".tmp" not in (results / "report.md").read_text() and phantom.is_dir()  # not read, not the report's
    expected = tmp_path / "ref" / "results"
    assert tree(results / "report", skip=("run.json",)).keys() == tree(expected / "report", skip=("run.json",)).keys()
    assert _without_times(results / "report.md") == _without_times(expected / "report.md")


def _without_times(path: Path) -> list[str]:
    """report.md without its stage wall-time rows (they differ between any two runs)."""
    return [line for line in path.read_text().splitlines() if not re.match(r"^\| results/\S+ \| [\d.]+ \|$", line)]
