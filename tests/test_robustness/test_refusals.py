"""The last silent paths of issue 24, stage side: params that no stage would have refused before it ran, a
ground truth edited after composition, an error that blamed a params key for a command-line argument, and
half-started run folders and temporaries that stayed after `dvc repro`.

Tiny generated data throughout; the model of the evaluation case is a stand-in that predicts a constant.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.core.io import read_alpha, write_image
from pipeline.core.manifest import file_record, write_manifest
from pipeline.core.params import ParamsError
from pipeline.core.runs import half_started_runs, remove_half_started_runs
from pipeline.matting.eval_sets import DatasetError, EvalSet, check_composed_manifest
from pipeline.params_check import check_params, main as params_check
from tests.test_matting.test_data_matting import make_composed_data
from tests.test_robustness.test_checkpoints import make_train_dir

REPO = Path(__file__).resolve().parents[2]


def _repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _write(path: Path, params: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------- params
def _set(*keys: str, value):
    def change(params: dict) -> None:
        node = params
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


PARAMS_CASES = {
    # case: (change to the repository's params.yaml, profile cpu; words of the error)
    "toy-datasets-repeated": (_set("toy", "datasets", value=["mnist", "mnist"]), r"toy\.datasets repeats 'mnist'"),
    "smoke-operators-repeated": (_set("toy", "budgets", "smoke", "operators", value=["bilinear", "bilinear"]),
                                 r"toy\.operators must not repeat a name.*\(in profile smoke, from "
                                 r"toy\.budgets\.smoke; the active profile is cpu\)"),
    "paper-budget-misspelled": (_set("toy", "budgets", "paper", "epochz", value=3),
                                r"unknown key toy\.budgets\.paper\.epochz \(did you mean 'epochs'\?\)"),
    "toy-operator-unknown": (_set("toy", "operators", value=["bilinear", "a2u", "a2uu"]),
                             r"toy\.operators names \['a2uu'\], not registered"),
    "toy-baseline-not-run": (_set("toy", "baseline", value="deconv"),
                             r"toy\.baseline 'deconv' is not among toy\.budgets\.cpu\.operators"),
    "bench-operators-repeated": (_set("bench", "operators", value=["a2u", "bilinear", "a2u"]),
                                 r"bench\.operators repeats 'a2u'"),
    "bench-variant-unknown": (_set("bench", "network_variants", value=["bilinear", "a2u-unshard"]),
                              r"bench\.network_variants names"),
    "paper-budget-range": (_set("bench", "budgets", "paper", "repeats", value=0),
                           r"bench\.repeats must be >= 1.*in profile paper"),
    "smoke-budget-type": (_set("compose", "budgets", "smoke", "size", value="96"),
                          r"compose\.size must be an integer.*in profile smoke"),
    "eval-set-named-test": (_set("evaluate", "sets", value={"test": {"path": "/data/x"}}),
                            r"evaluate\.sets\.test: the name 'test' is reserved"),
}


@pytest.mark.parametrize("change, words", PARAMS_CASES.values(), ids=PARAMS_CASES.keys())
def test_params_check_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture, change, words: str) -> None:
    """Each passed the check before (only a stage reading the key, for the active profile, would have refused)."""
    params = _repo_params()
    change(params)
    path = _write(tmp_path / "params.yaml", params)
    with pytest.raises(ParamsError, match=words):
        check_params(path)
    assert params_check([str(path)]) == 2 and "params check failed: " in capsys.readouterr().err


def test_params_check_refuses_a_key_written_twice(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys without a word (here: the second `train` section wins)."""
    text = (REPO / "params.yaml").read_text() + "\ntrain:\n  iters: 5\n"
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ParamsError, match=r"key train is written twice \(lines \d+ and \d+\)"):
        check_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("base:\n  seed: 1\n  profile: cpu\n  seed: 2\n")
    with pytest.raises(ParamsError, match=r"key base\.seed is written twice \(lines 2 and 4\)"):
        check_params(tmp_path / "params.yaml")


def test_params_check_record_does_not_depend_on_the_values(tmp_path: Path) -> None:
    """`--out` is what a DVC stage of the check would output: identical bytes for every valid params file, so the
    stages that would depend on it rerun only for the keys they read."""
    params = _repo_params()
    assert params_check([str(_write(tmp_path / "a" / "params.yaml", params)), "--out", str(tmp_path / "a.json")]) == 0
    params["train"]["iters"] = 7
    params["toy"]["baseline"] = "a2u"
    assert params_check([str(_write(tmp_path / "b" / "params.yaml", params)), "--out", str(tmp_path / "b.json")]) == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_the_repository_params_pass(tmp_path: Path) -> None:
    assert check_params(REPO / "params.yaml")[0] == "base"


# ------------------------------------------------------------------------------------------- evaluation
def _composed_set(root: Path) -> Path:
    """A composed set with a test split and the compose stage's manifest.jsonl (sha256 per file)."""
    make_composed_data(root)
    shutil.copytree(root / "val", root / "test")
    records = [file_record(root, p, p.relative_to(root).parts[0], p.parent.name, [])
               for p in sorted(root.rglob("*")) if p.is_file() and p.name != "summary.json"]
    write_manifest(root, records)
    return root


def _evaluate(tmp_path: Path, data: Path) -> dict:
    from stages.evaluate import main as evaluate_main

    model = tmp_path / "train"
    if not model.exists():
        make_train_dir(model / "seed0")
    params = {"base": {"seed": 6, "profile": "smoke", "device": "cpu"}, "train": {"seeds": [0]},
              "evaluate": {"sets": {}, "tile_check": None}}
    path = _write(tmp_path / "params.yaml", params)
    return evaluate_main(["stand-in", "--params", str(path), "--model", str(model), "--data", str(data),
                          "--out", str(tmp_path / "eval"), "--no-progress"],
                         load_model=lambda *_: (lambda x: torch.full_like(x[:, :1], 0.25)))


def test_evaluation_refuses_a_ground_truth_changed_after_composition(tmp_path: Path) -> None:
    """`dvc repro -s -f evaluate@<v>` evaluated an edited alpha (still a valid PNG) without a word."""
    data = _composed_set(tmp_path / "composed")
    assert check_composed_manifest(EvalSet("test", data / "test"), data) == 7  # list.txt + 2 × image/alpha/trimap
    assert _evaluate(tmp_path, data)["n_images"] == 2
    alpha = read_alpha(data / "test" / "alpha" / "v1.png")
    alpha[0, 0] = 255 - alpha[0, 0]
    write_image(data / "test" / "alpha" / "v1.png", alpha)
    shutil.rmtree(tmp_path / "eval")
    with pytest.raises(DatasetError, match=rf"set 'test': {data / 'test' / 'alpha' / 'v1.png'} changed after "
                                           rf"{data / 'manifest.jsonl'} was written \(sha256 differs\): the "
                                           r"composed set was changed after composition; restore it with "
                                           rf"`dvc checkout {data}`"):
        _evaluate(tmp_path, data)
    assert not (tmp_path / "eval").exists()


def test_evaluation_refuses_a_file_the_composition_did_not_write(tmp_path: Path) -> None:
    data = _composed_set(tmp_path / "composed")
    (data / "test" / "list.txt").write_text("v0\nv1\nv2\n")
    for kind in ("image", "alpha", "trimap"):
        shutil.copy(data / "test" / kind / "v1.png", data / "test" / kind / "v2.png")
    with pytest.raises(DatasetError, match=r"test/list\.txt changed after"):
        check_composed_manifest(EvalSet("test", data / "test"), data)
    (data / "test" / "list.txt").write_text("v0\nv1\n")  # back as composed, but v2 stays: not listed, not read
    assert check_composed_manifest(EvalSet("test", data / "test"), data) == 7


def test_test_tool_checks_the_composed_manifest_too(tmp_path: Path) -> None:
    from tests.test_tools.test_refusals import _train_dir  # noqa: F401  (registers PairStandInNet)
    from tools.test import main as test_main

    data = _composed_set(tmp_path / "composed")
    from pipeline.matting.train import profile_config

    config = tmp_path / "tiny.py"
    base = (REPO / profile_config("cpu", REPO / "configs" / "matting")).resolve()
    config.write_text(f"_base_ = [{str(base)!r}]\n"
                      "model = dict(network=dict(_delete_=True, type='PairStandInNet'))\n"
                      f"test_dataloader = dict(dataset=dict(data_root={str(data / 'test')!r}))\n")
    train_dir = _train_dir(tmp_path / "train", config)
    write_image(data / "test" / "trimap" / "v0.png", read_alpha(data / "test" / "trimap" / "v0.png") * 0)
    with pytest.raises(DatasetError, match=r"trimap/v0\.png changed after"):
        test_main([str(config), str(train_dir / "best.pth"), "--work-dir", str(tmp_path / "work")])


# ------------------------------------------------------------------------------------------- train stage
def _train_params(tmp_path: Path, **train) -> Path:
    return _write(tmp_path / "params.yaml", {"base": {"seed": 1, "profile": "smoke", "device": "cpu"},
                                             "train": {"variants": ["bilinear"], "seeds": [0], **train}})


def test_train_stage_blames_the_data_argument(tmp_path: Path) -> None:
    """It blamed `params.yaml: train.val_source 'composed'` for a --data folder that does not exist."""
    from stages.train import main as train_main

    params = _train_params(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"^--data {tmp_path / 'nosuch'}: folder not found"):
        train_main(["bilinear", "--seed", "0", "--params", str(params), "--data", str(tmp_path / "nosuch"),
                    "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"--data .*empty: not a composed set \(no summary\.json and no "
                                                r"train"):
        train_main(["bilinear", "--seed", "0", "--params", str(params), "--data", str(tmp_path / "empty"),
                    "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])


def _run_folders(work: Path) -> dict[str, Path]:
    """A finished run, a resumable one, and two half-started ones (a training that failed on a corrupt
    foreground before its first checkpoint: an MMEngine log, DVCLive files, maybe a killed first save)."""
    folders = {"finished": work / "0123456789ab", "resumable": work / "fedcba987654",
               "half": work / "0123456789ab.2", "half_killed_save": work / "aaaaaaaaaaaa"}
    for folder in folders.values():
        (folder / "20261207_120000").mkdir(parents=True)
        (folder / "20261207_120000" / "20261207_120000.log").write_text("ValueError: corrupt foreground\n")
    (folders["finished"] / "result.json").write_text("{}")
    (folders["resumable"] / "iter_2.pth").write_bytes(b"PK")
    (folders["half_killed_save"] / ".iter_2.pth.tmp").write_bytes(b"PK")
    return folders


def test_half_started_runs_are_found_and_nothing_else(tmp_path: Path) -> None:
    folders = _run_folders(tmp_path / "work")
    (tmp_path / "work" / "notes").mkdir()  # not a run folder
    assert half_started_runs(tmp_path / "work") == [folders["half"], folders["half_killed_save"]]
    assert remove_half_started_runs(tmp_path / "work") == [folders["half"], folders["half_killed_save"]]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["0123456789ab", "fedcba987654", "notes"]


def test_train_stage_removes_half_started_runs_when_it_starts(tmp_path: Path) -> None:
    from stages.train import main as train_main

    data = make_composed_data(tmp_path / "composed")
    work = tmp_path / "work"
    folders = _run_folders(work)
    params = _train_params(tmp_path, config=str(tmp_path / "no_such_config.py"))  # stops right after the start
    with pytest.raises(ParamsError, match="train.config"):
        train_main(["bilinear", "--seed", "0", "--params", str(params), "--data", str(data),
                    "--out", str(tmp_path / "out"), "--work", str(work)])
    assert not folders["half"].exists() and not folders["half_killed_save"].exists()
    assert folders["finished"].is_dir() and folders["resumable"].is_dir()


# ------------------------------------------------------------------------------------------- before dvc repro
def _age(path: Path, seconds: float = 3600) -> None:
    """Make everything under `path` look `seconds` old."""
    when = os.path.getmtime(path) - seconds
    for entry in [path, *path.rglob("*")]:
        os.utime(entry, (when, when), follow_symlinks=False)


def _leftovers(root: Path) -> dict[str, Path]:
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / ".dvc" / "tmp").mkdir(parents=True)
    composed = root / "data" / "composed"
    (composed / "test").mkdir(parents=True)
    (composed / "summary.json").write_text("{}")
    stale = {"compose": root / "data" / ".composed.k2j4h1g8.tmp",  # a killed compose (atomic_dir)
             "compose_old": root / "data" / ".composed.old",  # killed between the two renames
             "eval": root / "results" / "eval" / ".a2u.x8d7f6e5.tmp",
             "export": root / "results" / "train" / "a2u" / "seed0" / ".best.pth.q1w2e3r4.tmp"}  # atomic_path
    for name in ("compose", "compose_old", "eval"):
        (stale[name] / "test").mkdir(parents=True)
        (stale[name] / "test" / "a.png").write_bytes(b"x")
    stale["export"].parent.mkdir(parents=True)
    stale["export"].write_bytes(b"PK")
    runs = _run_folders(root / "work_dirs" / "train" / "bilinear" / "seed0")
    legacy = _run_folders(root / "work_dirs" / "train" / "a2u")  # the layout before seeds
    for path in (root / "data", root / "results", root / "work_dirs"):
        _age(path)
    return {**stale, **{f"run_{k}": v for k, v in runs.items()}, **{f"legacy_{k}": v for k, v in legacy.items()}}


def test_leftovers_are_removed_before_dvc_repro(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`make repro` runs `python -m pipeline.params_check params.yaml --remove-leftovers` first: a stage that
    DVC restores from its cache never starts, so it cannot remove its own leftovers."""
    paths = _leftovers(tmp_path)
    fresh = tmp_path / "work_dirs" / "train" / "bilinear" / "seed1" / "bbbbbbbbbbbb"  # a run started just now,
    (fresh / "20261207_130000").mkdir(parents=True)                                    # outside DVC
    held = tmp_path / "work_dirs" / "train" / "bilinear" / "seed2" / "cccccccccccc"  # an old one still writing
    (held / "log").mkdir(parents=True)
    with (held / "log" / "run.log").open("w") as log:
        _age(held)
        assert params_check([str(tmp_path / "params.yaml"), "--remove-leftovers"]) == 0
        assert held.is_dir(), "a folder a process holds open is kept"
    removed = capsys.readouterr().err
    gone = ["compose", "compose_old", "eval", "export", "run_half", "run_half_killed_save", "legacy_half",
            "legacy_half_killed_save"]
    for name in gone:
        assert not paths[name].exists(), name
        assert f"removed {paths[name]}" in removed, name
    for name in ("run_finished", "run_resumable", "legacy_finished", "legacy_resumable"):
        assert paths[name].is_dir(), name
    assert fresh.is_dir(), "a run folder changed in the last minutes is kept (maybe a run started outside DVC)"
    assert (tmp_path / "data" / "composed" / "summary.json").is_file()


def test_leftovers_are_left_while_dvc_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = _leftovers(tmp_path)
    with (tmp_path / ".dvc" / "tmp" / "lock").open("a") as lock:  # what a running `dvc repro` holds
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert params_check([str(tmp_path / "params.yaml"), "--remove-leftovers"]) == 0
    assert "a DVC command is running" in capsys.readouterr().err
    assert all(path.exists() for path in paths.values())


def test_make_repro_removes_leftovers_first() -> None:
    recipe = (REPO / "Makefile").read_text().split("\nrepro:", 1)[1].split("\n\n", 1)[0]
    assert "-m pipeline.params_check params.yaml --remove-leftovers" in recipe.splitlines()[1]
    assert "dvc repro" in recipe.splitlines()[2]
