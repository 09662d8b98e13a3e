"""tools/train.py, tools/test.py and demo/matting_demo.py on tiny generated data, through the real Runner.

One module-scoped flow: train a tiny stand-in network for 2 iterations from a config file (+ --cfg-options),
refuse to overwrite the work dir without --resume, test the checkpoint with `Runner.test()` (the numbers must
equal the evaluate stage's functions on the same images), and matte images with the demo (file and folder;
a bad trimap is an error naming the file).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config

import tests.test_matting.test_data_matting  # noqa: F401  (registers TinyStandInMattingNet)
from pipeline.core.io import ImageError, read_alpha, read_rgb, read_trimap, write_image
from pipeline.matting.apis import init_model
from pipeline.matting.eval_sets import EvalSet
from pipeline.matting.evaluate import evaluate_set
from pipeline.matting.inference import predict_alpha
from pipeline.matting.train import profile_config
from pipeline.matting.val_metric import MattingValMetric
from tests.test_matting.test_data_matting import make_composed_data

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_composed_data(tmp_path_factory.mktemp("composed"))
    shutil.copytree(root / "val", root / "test")  # same layout: image/alpha/trimap + list.txt
    return root


@pytest.fixture(scope="module")
def config(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's config: the cpu profile's config with a tiny network and this data (as one would write it)."""
    path = tmp_path_factory.mktemp("cfg") / "tiny_a2u.py"
    base = (REPO / profile_config("cpu", REPO / "configs" / "matting")).resolve()
    path.write_text(f"_base_ = [{str(base)!r}]\n"
                    "model = dict(network=dict(_delete_=True, type='TinyStandInMattingNet'))\n"
                    "total_batch_size = 2\n"
                    f"train_dataloader = dict(num_workers=0, persistent_workers=False, "
                    f"dataset=dict(data_root={str(data / 'train')!r}))\n"
                    f"val_dataloader = dict(dataset=dict(data_root={str(data / 'val')!r}))\n"
                    f"test_dataloader = dict(dataset=dict(data_root={str(data / 'test')!r}))\n")
    return path


SHORT = ["train_cfg.max_iters=2", "train_cfg.val_interval=2", "crop_size=32"]


@pytest.fixture(scope="module")
def trained(config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tools.train import main as train_main

    work = tmp_path_factory.mktemp("work") / "tiny"
    final_val = train_main([str(config), "--work-dir", str(work), "--cfg-options", *SHORT])
    assert set(final_val) == {"sad", "mse"}
    return work


def test_train_writes_checkpoints_and_refuses_to_overwrite_them(config: Path, trained: Path) -> None:
    from tools.train import main as train_main

    assert (trained / "iter_2.pth").is_file() and (trained / "best_val_sad_iter_2.pth").is_file()
    assert (trained / "dvclive").is_dir(), "DVCLive writes into the work dir, not the current directory"
    assert list(trained.glob("*/*.log")), "the MMEngine log is in the work dir"
    with pytest.raises(FileExistsError, match="pass --resume"):
        train_main([str(config), "--work-dir", str(trained), "--cfg-options", *SHORT])


def test_resume_continues_from_the_newest_checkpoint(config: Path, trained: Path, tmp_path: Path) -> None:
    from tools.train import main as train_main

    work = tmp_path / "resumed"
    shutil.copytree(trained, work)
    train_main([str(config), "--work-dir", str(work), "--resume", "--cfg-options", *SHORT[1:],
                "train_cfg.max_iters=4"])
    assert (work / "iter_4.pth").is_file()


def test_test_tool_matches_the_evaluate_stage_functions(config: Path, trained: Path, data: Path,
                                                        tmp_path: Path) -> None:
    from tools.test import main as test_main

    out = tmp_path / "test.json"
    metrics = test_main([str(config), str(trained / "iter_2.pth"), "--work-dir", str(tmp_path / "w"),
                         "--out", str(out)])
    assert set(metrics) == {"sad", "mse", "grad", "conn"}
    assert json.loads(out.read_text())["metrics"] == metrics and json.loads(out.read_text())["n_images"] == 2
    model = init_model(config, trained / "iter_2.pth")
    reference = evaluate_set(model, EvalSet("test", data / "test"), None, progress=False).summary()
    for name, value in metrics.items():
        assert value == pytest.approx(reference[name]["mean"], rel=1e-6, abs=1e-9), name


def test_test_tool_errors_name_the_missing_input(config: Path, tmp_path: Path) -> None:
    from tools.test import main as test_main

    with pytest.raises(FileNotFoundError, match="nothing.pth: checkpoint file not found"):
        test_main([str(config), str(tmp_path / "nothing.pth")])


def test_every_matting_config_can_be_tested() -> None:
    for path in sorted((REPO / "configs" / "matting").glob("*.py")):
        cfg = Config.fromfile(str(path))
        assert cfg.test_dataloader.dataset.data_root.endswith("/test"), path
        assert tuple(cfg.test_evaluator.metric_names) == ("sad", "mse", "grad", "conn"), path
        assert cfg.test_cfg.type == "TestLoop", path


def test_demo_mattes_a_file_and_a_folder_without_ground_truth(config: Path, trained: Path, data: Path,
                                                              tmp_path: Path) -> None:
    from demo.matting_demo import main as demo_main

    checkpoint = trained / "iter_2.pth"
    image, trimap = data / "test" / "image" / "v0.png", data / "test" / "trimap" / "v0.png"
    (written,) = demo_main([str(image), str(trimap), str(tmp_path / "v0_alpha.png"), "--checkpoint",
                            str(checkpoint), "--config", str(config)])
    expected = predict_alpha(init_model(config, checkpoint), read_rgb(image), read_trimap(trimap))
    np.testing.assert_array_equal(read_alpha(written), expected)
    folder = demo_main([str(data / "test" / "image"), str(data / "test" / "trimap"), str(tmp_path / "out"),
                        "--checkpoint", str(checkpoint), "--config", str(config)])
    assert [p.name for p in folder] == ["v0.png", "v1.png"] and all(p.is_file() for p in folder)


def test_demo_rejects_a_bad_trimap_with_the_file_and_values(config: Path, trained: Path, data: Path,
                                                            tmp_path: Path) -> None:
    from demo.matting_demo import main as demo_main
    from pipeline.core.logs import run_cli

    bad = read_trimap(data / "test" / "trimap" / "v0.png").copy()
    bad[0, :3] = (1, 127, 200)
    write_image(tmp_path / "bad.png", bad)
    argv = [str(data / "test" / "image" / "v0.png"), str(tmp_path / "bad.png"), str(tmp_path / "a.png"),
            "--checkpoint", str(trained / "iter_2.pth"), "--config", str(config)]
    with pytest.raises(ImageError, match=r"bad\.png: trimap holds values \[1, 127, 200\].*use 128"):
        demo_main(argv)
    with pytest.raises(SystemExit) as exit_info:  # the command line: one message, exit status 2
        run_cli(lambda: demo_main(argv))
    assert exit_info.value.code == 2 and not (tmp_path / "a.png").exists()


def test_test_metric_uses_the_matlab_metrics() -> None:
    from pipeline.matting.metrics import compute_matting_metrics

    rng = np.random.default_rng(0)
    alpha = rng.integers(0, 256, (1, 12, 12), dtype=np.uint8)
    trimap = np.full((1, 12, 12), 128, np.uint8)
    pred = rng.random((1, 12, 12)).astype(np.float32)
    metric = MattingValMetric(prefix="test", metric_names=("sad", "mse", "grad", "conn"))
    import torch

    metric.process({"data_samples": {"alpha": torch.from_numpy(alpha[None]), "trimap": torch.from_numpy(trimap[None])}},
                   [torch.from_numpy(pred)])
    expected = compute_matting_metrics((np.clip(pred[0], 0, 1) * 255).astype(np.uint8), alpha[0], trimap[0])
    assert metric.compute_metrics(metric.results) == pytest.approx(expected)
    with pytest.raises(ValueError, match="metric_names must be a non-empty subset"):
        MattingValMetric(metric_names=("sad", "psnr"))


def test_train_tool_runs_the_paper_config_without_validation(data: Path, tmp_path: Path) -> None:
    """The paper recipe has no val_dataloader (no selection on the test set): the tool must still train it."""
    from tools.train import main as train_main

    paper = (REPO / profile_config("paper", REPO / "configs" / "matting")).resolve()
    assert Config.fromfile(str(paper)).val_source is None  # resolved to no val_dataloader
    path = tmp_path / "paper_tiny.py"
    path.write_text(f"_base_ = [{str(paper)!r}]\n"
                    "model = dict(network=dict(_delete_=True, type='TinyStandInMattingNet'))\n"
                    f"train_dataloader = dict(num_workers=0, persistent_workers=False, "
                    f"dataset=dict(data_root={str(data / 'train')!r}))\n")
    work = tmp_path / "work"
    train_main([str(path), "--work-dir", str(work), "--cfg-options", "train_cfg.max_iters=2", "crop_size=32",
                "total_batch_size=2", "default_hooks.checkpoint.interval=2"])
    assert (work / "iter_2.pth").is_file() and not list(work.glob("best*.pth"))
