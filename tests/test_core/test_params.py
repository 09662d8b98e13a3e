"""params.yaml → typed, frozen dataclasses: precedence, unknown keys, types, ranges, every stage's section."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pipeline.bench.params import BenchParams
from pipeline.compose.params import ComposeParams
from pipeline.core.params import BaseParams, ParamsError, load_params, load_stage, read_section
from pipeline.matting.params import EvaluateParams, TrainParams
from pipeline.report.params import ReportParams
from pipeline.toy.params import ToyParams

REPO = Path(__file__).resolve().parents[2]
STAGES = {"compose": ComposeParams, "toy": ToyParams, "train": TrainParams, "evaluate": EvaluateParams,
          "bench": BenchParams, "report": ReportParams}


def _write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("profile", ["smoke", "cpu", "extended", "paper"])
def test_the_repositorys_params_load_for_every_stage_and_profile(profile: str, tmp_path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["base"]["profile"] = profile
    path = _write(tmp_path, params)
    for section, cls in STAGES.items():
        base, cfg = load_stage(path, section, cls)
        assert base.profile == profile and isinstance(cfg, cls)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(cfg, dataclasses.fields(cfg)[0].name, None)


def test_an_explicit_key_wins_over_the_profiles_budget(tmp_path: Path) -> None:
    budgets = {"smoke": {"iters": 4}, "cpu": {"iters": 900}, "paper": {"iters": 180000}}
    path = _write(tmp_path, {"base": {"profile": "cpu"}, "train": {"budgets": budgets}})
    assert load_stage(path, "train", TrainParams)[1].iters == 900                  # the budget of the profile
    path = _write(tmp_path, {"base": {"profile": "cpu"}, "train": {"iters": 2000, "budgets": budgets}})
    assert load_stage(path, "train", TrainParams)[1].iters == 2000                 # `-S train.iters=2000`
    path = _write(tmp_path, {"base": {"profile": "cpu"}, "train": {}})
    assert load_stage(path, "train", TrainParams)[1].iters == TrainParams().iters  # the dataclass default
    path = _write(tmp_path, {"base": {"profile": "cpu"},
                             "toy": {"operators": ["a2u"], "budgets": {"cpu": {"operators": ["bilinear"]}}}})
    assert load_stage(path, "toy", ToyParams)[1].operators == ("a2u",)


@pytest.mark.parametrize("section, values, message", [
    ("train", {"lrr": 0.1}, r"unknown key train\.lrr \(did you mean 'lr'\?\)"),
    ("evaluate", {"continue_on_eror": True}, r"evaluate\.continue_on_eror \(did you mean 'continue_on_error'"),
    ("train", {"iters": "2000"}, r"train\.iters must be an integer, got '2000'"),
    ("train", {"iters": -5}, r"train\.iters must be >= 1, got -5"),
    ("train", {"crop": 100}, r"train\.crop must be a positive multiple of 16"),
    ("train", {"variants": "a2u"}, r"train\.variants must be a list, got 'a2u'"),
    ("train", {"budgets": {"cpu": {"itres": 3}}}, r"unknown key train\.budgets\.cpu\.itres"),
    ("train", {"budgets": {"gpu": {}}}, r"train\.budgets has unknown profile 'gpu'"),
    ("toy", {"seeds": [0, 0]}, r"toy\.seeds must not repeat"),
    ("toy", {"datasets": ["cifar"]}, r"must be among \['fashion-mnist', 'mnist'\]"),
    ("evaluate", {"checkpoint": "middle"}, r"evaluate\.checkpoint must be one of \['auto', 'best', 'last'\]"),
    ("evaluate", {"tile": 100}, r"evaluate\.tile/tile_overlap: tile must be a positive multiple"),
    ("compose", {"comp1k": {"root": "r", "coco": "c"}}, r"unknown key compose\.comp1k\.coco"),
    ("bench", {"threads": 0}, r"bench\.threads must be null or >= 1"),
    ("report", {"qualitative_images": True}, r"report\.qualitative_images must be an integer"),
])
def test_wrong_settings_are_errors_that_name_the_key(section: str, values: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        read_section({section: values}, section, STAGES[section], profile="cpu")


def test_unknown_sections_and_bad_base_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"unknown top-level section 'trian' \(did you mean 'train'\?\)"):
        load_params(_write(tmp_path, {"trian": {}}))
    with pytest.raises(ParamsError, match=r"base\.profile must be one of \['smoke', 'cpu', 'extended', 'paper'\]"):
        load_stage(_write(tmp_path, {"base": {"profile": "gpu"}}), "report", ReportParams)
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "absent.yaml")
    with pytest.raises(ParamsError, match="no entry for profile 'paper'"):
        read_section({"train": {"budgets": {"cpu": {}}}}, "train", TrainParams, profile="paper")


def test_cuda_device_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert BaseParams(device="auto").torch_device() == "cpu"
    with pytest.raises(ParamsError, match="base.device is 'cuda'"):
        BaseParams(device="cuda").torch_device()


def test_nested_sources_and_required_paths() -> None:
    cfg = read_section({"compose": {"source": "comp1k", "comp1k": {"root": "r", "coco_dir": "c", "voc_dir": "v",
                                                                     "n_bg_train": 3}}}, "compose", ComposeParams)
    assert cfg.real_source().n_bg_train == 3 and cfg.real_source().train_dir == "Training_set"
    missing = read_section({"compose": {"source": "d646"}}, "compose", ComposeParams)
    with pytest.raises(ParamsError, match=r"'compose\.d646\.root' is required"):
        missing.real_source()
