"""The paper recipe's pieces: the pretrained encoder through MMEngine's init (runner start-up included), one
true-named config per profile, the dumped config equals what ran, any registered pair as a variant, validation
only from non-test data, the evaluated checkpoint recorded, and DVC params that let a new variant run alone."""
from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.response
from email.message import Message
from pathlib import Path

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.hooks import Hook

from models.matting.encoder import A2UResNetEncoder
from models.matting.network import MINI_WIDTH
from models.matting.pretrained import PretrainedWeightsUnavailable, cache_path
from pipeline.core.params import PROFILES, ParamsError
from pipeline.matting.checkpoint import read_checkpoint
from pipeline.matting.params import TrainParams, load_train_params, registered_pairs
from pipeline.matting.selection import resolve_checkpoint
from pipeline.matting.train import (export_training, profile_config, recipe, resolve_val_source, run_training,
                                    training_config)
from tests.test_matting.test_data_matting import make_composed_data

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "matting"


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_composed_data(tmp_path_factory.mktemp("composed_paper"))


def fake_torchvision_resnet34(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under torchvision resnet34's names for layers 0-3 (blocks [3, 4, 6]; layer4/fc left out)."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def bn(prefix: str, channels: int) -> None:
        state[prefix + "weight"] = torch.rand(channels, generator=generator) + 0.5
        state[prefix + "bias"] = torch.randn(channels, generator=generator) * 0.1
        state[prefix + "running_mean"] = torch.randn(channels, generator=generator) * 0.1
        state[prefix + "running_var"] = torch.rand(channels, generator=generator) + 0.5

    state["conv1.weight"] = torch.randn(64, 3, 7, 7, generator=generator) * 0.05
    bn("bn1.", 64)
    in_channels = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6), (64, 128, 256)), start=1):
        for index in range(blocks):
            prefix, block_in = f"layer{stage}.{index}.", in_channels if index == 0 else width
            state[prefix + "conv1.weight"] = torch.randn(width, block_in, 3, 3, generator=generator) * 0.05
            bn(prefix + "bn1.", width)
            state[prefix + "conv2.weight"] = torch.randn(width, width, 3, 3, generator=generator) * 0.05
            bn(prefix + "bn2.", width)
            if index == 0 and stage > 1:
                state[prefix + "downsample.0.weight"] = torch.randn(width, block_in, 1, 1, generator=generator) * 0.05
                bn(prefix + "downsample.1.", width)
        in_channels = width
    return state


class _EncoderAtStart(Hook):
    """Copies the encoder's weights in `before_train`, i.e. after `Runner.train()` ran `init_weights()`."""

    def before_train(self, runner) -> None:
        model = getattr(runner.model, "module", runner.model)
        self.state = {k: v.detach().clone() for k, v in model.network.encoder.state_dict().items()}


def test_paper_config_runner_keeps_the_pretrained_encoder(composed: Path, tmp_path: Path) -> None:
    """A runner built from the paper config with a small fake torchvision checkpoint holds those weights after
    MMEngine's init_weights() in Runner.train(), and its checkpoint ends with them nearly unchanged."""
    fake = fake_torchvision_resnet34()
    weights = tmp_path / "resnet34-fake.pth"
    torch.save(fake, weights)
    params = TrainParams(iters=2, crop=32, batch_size=2, val_interval=2, num_workers=0, encoder_weights=str(weights))
    cfg = training_config(profile_config("paper"), params, seed=0, data_root=composed, work_root=tmp_path / "work",
                          variant="bilinear")
    assert cfg.val_cfg is None and cfg.default_hooks.checkpoint.save_best is None  # no validation in the paper
    hook = _EncoderAtStart()
    result = run_training(cfg, extra_hooks=[hook])
    expected = {"layer0.conv.weight": None, "layer1.0.conv1.conv.weight": fake["layer1.0.conv1.weight"],
                "layer2_1.shortcut.conv.weight": fake["layer2.0.downsample.0.weight"],
                "layer3_2.2.conv2.conv.weight": fake["layer3.3.conv2.weight"],
                "layer3_1.conv1.bn.running_var": fake["layer3.0.bn1.running_var"]}
    start = hook.state
    assert torch.equal(start["layer0.conv.weight"][:, :3], fake["conv1.weight"])
    assert torch.count_nonzero(start["layer0.conv.weight"][:, 3]) == 0
    for key, value in expected.items():
        if value is not None:
            assert torch.equal(start[key], value), key
    out = export_training(result, tmp_path / "out", summary={"variant": "bilinear"})
    assert not (out / "best.pth").exists()  # no validation: no "best" to pretend
    final = read_checkpoint(out / "last.pth")["state_dict"]
    for key in ("layer1.0.conv1.conv.weight", "layer2_1.shortcut.conv.weight", "layer3_2.2.conv2.conv.weight"):
        moved = (final["network.encoder." + key] - start[key]).abs().max().item()
        assert 0 < moved < 1e-3, (key, moved)  # two Adam steps at the encoder's lr 1e-4: nearly unchanged
    summary = json.loads((out / "summary.json").read_text())
    assert summary["encoder_init"]["format"] == "torchvision" and summary["encoder_init"]["matched"] == 125
    assert {k: (v["iter"], v["selected_by"]) for k, v in summary["checkpoints"].items()} == \
        {"last": (2, "last iteration")}
    log = (out / "train_log.txt").read_text()
    assert f"encoder: loaded pretrained weights {weights} (torchvision format): 125 of 125 encoder tensors" in log
    assert "trimap channel zero" in log


# ------------------------------------------------------------------------------------------------ download
def _serve(monkeypatch: pytest.MonkeyPatch, payload: bytes | None) -> list[str]:
    """Replace torch.hub's urlopen: serve `payload` (None: no network). Returns the URLs asked for."""
    asked: list[str] = []

    def urlopen(request, *args, **kwargs):
        asked.append(request.full_url)
        if payload is None:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        headers = Message()
        headers["Content-Length"] = str(len(payload))
        return urllib.response.addinfourl(io.BytesIO(payload), headers, request.full_url, 200)

    monkeypatch.setattr(torch.hub, "urlopen", urlopen)
    return asked


def test_https_weights_are_downloaded_once_with_their_hash_checked(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    buffer = io.BytesIO()
    torch.save(fake_torchvision_resnet34(1), buffer)
    payload = buffer.getvalue()
    url = f"https://example.invalid/models/resnet34-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    asked = _serve(monkeypatch, payload)
    encoder = A2UResNetEncoder(init_cfg=dict(type="Pretrained", checkpoint=url))
    encoder.init_weights()
    assert asked == [url] and cache_path(url).is_file() and encoder.pretrained_report.matched == 125
    asked = _serve(monkeypatch, None)  # offline now: the cached copy is used, nothing is asked for
    again = A2UResNetEncoder(init_cfg=dict(type="Pretrained", checkpoint=url))
    again.init_weights()
    assert asked == [] and torch.equal(again.layer1[0].conv1.conv.weight, encoder.layer1[0].conv1.conv.weight)

    wrong = re.sub(r"-[0-9a-f]+\.pth$", "-deadbeef.pth", url)  # a hash prefix the bytes do not have
    _serve(monkeypatch, payload)
    with pytest.raises(PretrainedWeightsUnavailable, match="sha256"):
        A2UResNetEncoder(init_cfg=dict(type="Pretrained", checkpoint=wrong)).init_weights()
    assert not cache_path(wrong).exists()


def test_no_network_and_no_cache_names_url_cache_and_param(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    _serve(monkeypatch, None)
    url = "https://download.pytorch.org/models/resnet34-b627a593.pth"
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        A2UResNetEncoder(init_cfg=dict(type="Pretrained", checkpoint=url)).init_weights()
    message = str(info.value)
    assert url in message and str(tmp_path / "hub" / "checkpoints" / "resnet34-b627a593.pth") in message
    assert "train.encoder_weights" in message


# ------------------------------------------------------------------------------------------------ configs
_NAME = re.compile(r"^a2u-matting_r34(-mini)?_(\d+)xb(\d+)-(\d+)(k|i)_(\w+)-(\d+)px_(\w+)\.py$")


@pytest.mark.parametrize("profile", PROFILES)
def test_one_config_per_profile_and_its_name_tells_the_truth(profile):
    path = profile_config(profile, CONFIGS)
    mini, gpus, per_gpu, iters, unit, data, crop, named_profile = _NAME.match(path.name).groups()
    cfg = Config.fromfile(str(path))
    assert named_profile == profile
    assert cfg.model.network.get("width", 1.0) == (MINI_WIDTH if mini else 1.0)  # 'mini' names the CPU width
    assert cfg.train_cfg.max_iters == int(iters) * (1000 if unit == "k" else 1)
    assert cfg.total_batch_size == int(gpus) * int(per_gpu) and cfg.train_dataloader.batch_size == int(per_gpu)
    assert cfg.crop_size == int(crop)
    assert (data == "comp1k") == (profile == "paper")
    if profile in ("cpu", "extended"):  # a cosine over the whole run: the paper's two steps stalled it
        (cosine,) = cfg.param_scheduler
        assert cosine.type == "CosineAnnealingLR" and cosine.end == cosine.T_max == cfg.train_cfg.max_iters
        assert [h.type for h in cfg.custom_hooks][-1] == "EMAHook"
    else:
        milestones = cfg.param_scheduler[0].milestones
        assert milestones == sorted({round(m * cfg.train_cfg.max_iters / 180000) for m in (120000, 156000)} - {0})


def test_dumped_config_is_what_ran(tmp_path):
    data = make_composed_data(tmp_path / "data")
    params = TrainParams(iters=10, crop=32, batch_size=2, val_interval=5, lr=0.02, num_workers=0)
    cfg = training_config(profile_config("cpu", CONFIGS), params, seed=1, data_root=data,
                          work_root=tmp_path / "work", variant="carafe")
    cfg.dump(str(tmp_path / "config.py"))
    text = (tmp_path / "config.py").read_text()
    dumped = Config.fromfile(str(tmp_path / "config.py"))
    assert dumped.train_cfg.max_iters == dumped.max_iters == 10 and dumped.val_interval == 5
    assert dumped.param_scheduler[0].T_max == dumped.param_scheduler[0].end == 10  # the cosine spans the 10
    assert dumped.crop_size == 32 and dumped.total_batch_size == 2 and dumped.train_dataloader.batch_size == 2
    for pipeline in (dumped.train_pipeline, dumped.train_dataloader.dataset.pipeline):
        steps = {step["type"]: step for step in pipeline}
        assert steps["CropAroundUnknown"]["crop"] == 32 and steps["RandomResizeForeground"]["size"] == 40
    assert dumped.model.network.upsampler == "carafe" and dumped.optim_wrapper.optimizer.lr == 0.02
    assert dumped.val_dataloader.dataset.data_root == str(data / "val")
    assert "180000" not in text and "900" not in text and "crop=64" not in text and "crop=512" not in text
    assert recipe(cfg)["milestones"] == [] and recipe(cfg)["lr_schedule"] == ["CosineAnnealingLR"]
    assert recipe(cfg)["ema_momentum"] == 0.02


# ------------------------------------------------------------------------------------------------ variants
def test_every_registered_pair_is_a_variant_and_unknown_names_list_them(tmp_path):
    data = make_composed_data(tmp_path / "data")
    assert set(registered_pairs()) >= {"nearest", "bilinear", "deconv", "pixelshuffle", "maxunpool", "carafe",
                                       "indexnet", "a2u", "a2u-unshared"}
    for variant in registered_pairs():
        cfg = training_config(profile_config("smoke", CONFIGS), TrainParams(), seed=0, data_root=data,
                              work_root=tmp_path / "w", variant=variant)
        assert cfg.model.network.upsampler == variant
    with pytest.raises(ValueError, match="registered: a2u, a2u-avgpool, .*bilinear, carafe"):
        training_config(profile_config("smoke", CONFIGS), TrainParams(), seed=0, data_root=data,
                        work_root=tmp_path / "w", variant="bilinaer")
    with pytest.raises(ParamsError, match=r"train\.variants must name registered operator pairs"):
        TrainParams(variants=("bilinear", "bilinaer"))


def test_dvc_train_params_cover_every_train_key_but_variants_and_seeds():
    """Adding a variant or a seed must not rerun the other runs: the train stage (a variant × seed matrix) lists
    each train key but `variants` and `seeds`."""
    import dataclasses

    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]
    listed = set(stage.get("do", stage)["params"])
    assert stage["matrix"] == {"variant": "${train.variants}", "seed": "${train.seeds}"}
    fields = {f.name for f in dataclasses.fields(TrainParams)} - {"variants", "seeds"}
    assert {f"train.{name}" for name in fields} <= listed
    assert "train" not in listed and "train.variants" not in listed and "train.seeds" not in listed
    section = yaml.safe_load((REPO / "params.yaml").read_text())["train"]
    assert set(section) == fields | {"variants", "seeds"}  # every listed key is written (DVC needs it; budgets cannot apply)
    assert ("train.budgets" in listed) == ("budgets" in section)


def test_train_budgets_are_rejected(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train": {"budgets": {"cpu": {"iters": 3}}}}))
    with pytest.raises(ParamsError, match=r"train\.budgets .*configs/matting"):
        load_train_params(tmp_path / "params.yaml")


# ------------------------------------------------------------------------------------------------ validation
def test_validation_sources(tmp_path):
    data = make_composed_data(tmp_path / "data")
    assert resolve_val_source(None, data) is None and resolve_val_source("none", data) is None
    assert resolve_val_source("composed", data) == data / "val"
    with pytest.raises(ParamsError, match="never selects on the test set"):
        resolve_val_source(str(data / "test"), data)
    folder = tmp_path / "heldout"
    for kind in ("image", "alpha", "trimap"):
        (folder / kind).mkdir(parents=True)
    with pytest.raises(ParamsError, match="no validation images"):
        resolve_val_source(str(folder), data)
    (data / "val" / "list.txt").write_text("")  # what comp1k writes: no foreground held out
    with pytest.raises(ParamsError, match="comp1k holds no foregrounds out"):
        resolve_val_source("composed", data)


def test_a_validation_folder_without_list_txt(tmp_path):
    """A folder of image/alpha/trimap (no list.txt) validates every image/*.png."""
    import shutil

    from pipeline.matting.dataset import MattingValDataset

    data = make_composed_data(tmp_path / "data")
    folder = tmp_path / "myval"
    shutil.copytree(data / "val", folder)
    (folder / "list.txt").unlink()
    names = sorted(p.stem for p in (folder / "image").glob("*.png"))
    assert resolve_val_source(str(folder), data) == folder
    dataset = MattingValDataset(data_root=str(folder), pipeline=[])
    assert [item["name"] for item in dataset.data_list] == names


# ------------------------------------------------------------------------------------------------ selection
def _summary(folder: Path, checkpoints: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"checkpoints": checkpoints}))
    return folder


def test_evaluate_checkpoint_auto_best_last(tmp_path):
    validated = _summary(tmp_path / "v", {"best": {"iter": 600, "selected_by": "lowest val/sad on 'composed'"},
                                          "last": {"iter": 900, "selected_by": "last iteration"}})
    unvalidated = _summary(tmp_path / "u", {"last": {"iter": 180000, "selected_by": "last iteration"}})
    choice = resolve_checkpoint(validated, "auto")
    assert (choice.which, choice.iteration) == ("best", 600) and "lowest val/sad" in choice.describe()
    choice = resolve_checkpoint(unvalidated, "auto")
    assert choice.record() == {"which": "last", "iter": 180000, "requested": "auto",
                               "selected_by": "last at iteration 180000 (the run did not validate)"}
    assert resolve_checkpoint(validated, "last").iteration == 900
    with pytest.raises(ValueError, match="evaluate.checkpoint is 'best' but .* ran without validation"):
        resolve_checkpoint(unvalidated, "best")
