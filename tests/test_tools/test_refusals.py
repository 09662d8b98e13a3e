"""The OpenMMLab-style entry points refuse what they cannot honour (issue 24), each with an error naming the
argument or file: another variant's checkpoint (tools/test.py, the demo, resuming), a truncated checkpoint,
swapped arguments, a missing --checkpoint, mismatched image sizes (as W×H).

The "variants" are a tiny stand-in network whose `a2u` form has a kernel generator the `bilinear` form lacks (as
the real A2U network has 48 weights more than the bilinear one); checkpoints are written directly (no training)
except for the resume case (2 iterations).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch import nn

from models.registry import MODELS
from pipeline.core.io import ImageError, write_image
from pipeline.core.logs import run_cli
from pipeline.matting.checkpoint import CheckpointError, checkpoint_record
from pipeline.matting.train import profile_config
from tests.test_matting.test_data_matting import TinyStandInMattingNet, make_composed_data

REPO = Path(__file__).resolve().parents[2]


@MODELS.register_module()
class PairStandInNet(TinyStandInMattingNet):
    """The tiny stand-in; with upsampler 'a2u' it also holds a kernel generator (weights 'bilinear' lacks)."""

    def __init__(self, upsampler: str = "bilinear", width: int = 8, encoder_init_cfg: dict | None = None) -> None:
        super().__init__(width=width)
        self.upsampler = upsampler
        if upsampler == "a2u":
            self.generator = nn.Conv2d(width, 9, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.upsampler == "a2u":  # the generator takes part (and trains), as A2U's does
            out = out + 0.0 * self.generator(self.down(x)).mean()
        return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_composed_data(tmp_path_factory.mktemp("composed"))
    shutil.copytree(root / "val", root / "test")
    return root


@pytest.fixture(scope="module")
def configs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A user's config per variant: the cpu profile's config with the stand-in network and this data."""
    base = (REPO / profile_config("cpu", REPO / "configs" / "matting")).resolve()
    folder = tmp_path_factory.mktemp("cfg")
    paths = {}
    for variant in ("bilinear", "a2u"):
        paths[variant] = folder / f"tiny_{variant}.py"
        paths[variant].write_text(
            f"_base_ = [{str(base)!r}]\n"
            f"model = dict(network=dict(_delete_=True, type='PairStandInNet', upsampler={variant!r}))\n"
            "total_batch_size = 2\n"
            "train_dataloader = dict(num_workers=0, persistent_workers=False, "
            f"dataset=dict(data_root={str(data / 'train')!r}))\n"
            f"val_dataloader = dict(dataset=dict(data_root={str(data / 'val')!r}))\n"
            f"test_dataloader = dict(dataset=dict(data_root={str(data / 'test')!r}))\n")
    return paths


def _train_dir(root: Path, config: Path) -> Path:
    """`results/train/<variant>/seed0/` as the train stage exports it: config.py, best.pth, summary.json."""
    root.mkdir(parents=True)
    cfg = Config.fromfile(str(config))
    cfg.dump(str(root / "config.py"))
    model = MODELS.build(cfg.model)
    torch.save({"state_dict": model.state_dict(), "meta": {"iter": 2}}, root / "best.pth")
    (root / "summary.json").write_text(json.dumps({"checkpoints": {
        "best": {"iter": 2, "selected_by": "test", **checkpoint_record(root / "best.pth")}}}))
    return root


@pytest.fixture(scope="module")
def results(configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("results")
    return {v: _train_dir(root / "train" / v / "seed0", c) for v, c in configs.items()}


def _test_tool(args: list[str], tmp_path: Path) -> dict:
    from tools.test import main as test_main

    return test_main([*args, "--work-dir", str(tmp_path / "work")])


# ------------------------------------------------------------------------------------------- tools/test.py
@pytest.mark.parametrize("config_of, checkpoint_of, words", [
    ("bilinear", "a2u", r": 2 keys in the checkpoint but not in the model \(network\.generator\.weight, "
                        r"network\.generator\.bias\)\. To test it anyway, pass --non-strict"),
    ("a2u", "bilinear", r": 2 keys of the model missing from the checkpoint \(network\.generator\.weight, "
                        r"network\.generator\.bias\)\. To test it anyway, pass --non-strict"),
])
def test_test_tool_refuses_another_variants_checkpoint(results: dict[str, Path], tmp_path: Path, config_of: str,
                                                       checkpoint_of: str, words: str) -> None:
    """MMEngine's load_from dropped the unexpected weights (or kept the missing ones at their initial values)
    with an INFO line in the log file, and the tool printed metrics and exited 0."""
    config, checkpoint = results[config_of] / "config.py", results[checkpoint_of] / "best.pth"
    with pytest.raises(CheckpointError) as info:
        _test_tool([str(config), str(checkpoint)], tmp_path)
    message = str(info.value)
    assert message.startswith(f"{checkpoint} does not fit the model of {config}")
    assert re.search(words, message), message
    assert "--non-strict" in message
    with pytest.raises(SystemExit) as exit_info:  # the command line: one message, exit status 2
        run_cli(lambda: _test_tool([str(config), str(checkpoint)], tmp_path))
    assert exit_info.value.code == 2


def test_test_tool_loads_non_strictly_only_when_asked(results: dict[str, Path], tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    metrics = _test_tool([str(results["bilinear"] / "config.py"), str(results["a2u"] / "best.pth"),
                          "--non-strict"], tmp_path)
    assert set(metrics) == {"sad", "mse", "grad", "conn"}
    assert "NON-STRICTLY" in caplog.text and "network.generator.weight" in caplog.text
    right = _test_tool([str(results["a2u"] / "config.py"), str(results["a2u"] / "best.pth")], tmp_path)
    assert set(right) == set(metrics)


@pytest.mark.parametrize("recorded", [True, False])
def test_test_tool_names_a_truncated_checkpoint(results: dict[str, Path], tmp_path: Path, recorded: bool) -> None:
    """torch alone says 'PytorchStreamReader failed reading zip archive' without the path."""
    source = results["a2u"]
    folder = tmp_path / "copy"
    shutil.copytree(source, folder)
    name = "best.pth" if recorded else "iter_2.pth"  # an exported checkpoint has its size recorded; a work-dir one not
    if not recorded:
        (folder / "best.pth").rename(folder / name)
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    words = r"bytes, but \d+ were recorded at export" if recorded else "truncated or damaged checkpoint"
    with pytest.raises(CheckpointError, match=rf"^{folder / name}: .*{words}"):
        _test_tool([str(folder / "config.py"), str(folder / name)], tmp_path)


def test_test_tool_says_which_argument_is_which(results: dict[str, Path], tmp_path: Path) -> None:
    """Swapped, MMEngine said 'Only py/yml/yaml/json type are supported now!'."""
    config, checkpoint = results["a2u"] / "config.py", results["a2u"] / "best.pth"
    with pytest.raises(ValueError, match=rf"arguments are swapped: .*CONFIG {checkpoint} .*CHECKPOINT {config} "
                                         rf"\(a config file\)\. Run: python tools/test.py {config} {checkpoint}"):
        _test_tool([str(checkpoint), str(config)], tmp_path)
    with pytest.raises(ValueError, match=rf"CHECKPOINT {config}: a config file, not a checkpoint"):
        _test_tool([str(config), str(config)], tmp_path)
    with pytest.raises(ValueError, match=rf"CONFIG {checkpoint}: not a config file"):
        _test_tool([str(checkpoint), str(checkpoint)], tmp_path)
    with pytest.raises(FileNotFoundError, match=r"CONFIG .*nothing\.py: config file not found"):
        _test_tool([str(tmp_path / "nothing.py"), str(checkpoint)], tmp_path)


# ------------------------------------------------------------------------------------------- resume
def test_resume_refuses_a_work_dir_of_another_variant(configs: dict[str, Path], tmp_path: Path) -> None:
    """Resuming loads the newest checkpoint of the work dir through the same strict path."""
    from tools.train import main as train_main

    work = tmp_path / "work"
    short = ["train_cfg.max_iters=2", "train_cfg.val_interval=2", "crop_size=32"]
    train_main([str(configs["bilinear"]), "--work-dir", str(work), "--cfg-options", *short])
    with pytest.raises(CheckpointError, match=rf"{work / 'iter_2.pth'} does not fit the model of "
                                              rf"{configs['a2u']} .*missing from the checkpoint"):
        train_main([str(configs["a2u"]), "--work-dir", str(work), "--resume", "--cfg-options", short[1], short[2],
                    "train_cfg.max_iters=4"])
    assert not (work / "iter_4.pth").exists()


# ------------------------------------------------------------------------------------------- demo
def _demo(args: list[str]) -> list[Path]:
    from demo.matting_demo import main as demo_main

    return demo_main(args)


def test_demo_names_the_missing_checkpoint_not_a_config(data: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    image, trimap = data / "test" / "image" / "v0.png", data / "test" / "trimap" / "v0.png"
    with pytest.raises(FileNotFoundError, match=rf"^--checkpoint {tmp_path / 'nothing.pth'}: checkpoint file "
                                                r"not found$"):
        _demo([str(image), str(trimap), str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "nothing.pth")])
    monkeypatch.chdir(tmp_path)  # no results/train/a2u/seed0/best.pth here
    with pytest.raises(FileNotFoundError, match=r"--checkpoint not given, and the default "
                                                r"results/train/a2u/seed0/best\.pth does not exist"):
        _demo([str(image), str(trimap), str(tmp_path / "a.png")])


def test_demo_needs_a_config_beside_the_checkpoint_or_given(results: dict[str, Path], data: Path,
                                                            tmp_path: Path) -> None:
    shutil.copy(results["a2u"] / "best.pth", tmp_path / "best.pth")
    image, trimap = data / "test" / "image" / "v0.png", data / "test" / "trimap" / "v0.png"
    with pytest.raises(FileNotFoundError, match=rf"no config\.py beside the checkpoint {tmp_path / 'best.pth'}.*"
                                                r"pass --config"):
        _demo([str(image), str(trimap), str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "best.pth")])
    with pytest.raises(FileNotFoundError, match=r"^--config .*nothing\.py: config file not found"):
        _demo([str(image), str(trimap), str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "best.pth"),
               "--config", str(tmp_path / "nothing.py")])


def test_demo_refuses_another_variants_checkpoint(results: dict[str, Path], data: Path, tmp_path: Path) -> None:
    image, trimap = data / "test" / "image" / "v0.png", data / "test" / "trimap" / "v0.png"
    args = [str(image), str(trimap), str(tmp_path / "a.png"), "--checkpoint", str(results["a2u"] / "best.pth"),
            "--config", str(results["bilinear"] / "config.py")]
    with pytest.raises(CheckpointError, match=r"does not fit the model of .*bilinear.*--non-strict"):
        _demo(args)
    assert not (tmp_path / "a.png").exists()
    (written,) = _demo([*args, "--non-strict"])
    assert written.is_file()


def test_demo_size_mismatch_gives_both_sizes_as_width_by_height(results: dict[str, Path], tmp_path: Path) -> None:
    """The message printed the trimap as height×width after the image's width×height."""
    write_image(tmp_path / "image.png", np.zeros((40, 56, 3), np.uint8))  # 56 wide, 40 high
    write_image(tmp_path / "trimap.png", np.full((40, 48), 128, np.uint8))  # 48 wide, 40 high
    with pytest.raises(ImageError, match=r"sizes do not match \(width×height: image 56×40, trimap 48×40\)"):
        _demo([str(tmp_path / "image.png"), str(tmp_path / "trimap.png"), str(tmp_path / "a.png"),
               "--checkpoint", str(results["a2u"] / "best.pth")])
