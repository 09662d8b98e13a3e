"""Two Runners of one config built within one second each get their own logger and visualizer."""
from __future__ import annotations

from pathlib import Path

from mmengine.config import Config

from pipeline.core.runs import AtomicCheckpointRunner


def _config(work_dir: Path) -> Config:
    cfg = Config(dict(
        model=dict(type="ToyReconstructionNet", operator="bilinear", channels=(4, 4, 4), mid_channels=4),
        work_dir=str(work_dir), default_scope=None,
        visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend", save_dir=str(work_dir / "vis"))]),
        log_level="WARNING"))
    cfg.filename = str(work_dir.parent / "same_config.py")  # MMEngine names a run after its config file
    return cfg


def test_runners_of_one_config_in_one_second_do_not_share_a_visualizer(tmp_path: Path) -> None:
    import models  # noqa: F401  (registers ToyReconstructionNet)

    first = AtomicCheckpointRunner.from_cfg(_config(tmp_path / "a"))
    second = AtomicCheckpointRunner.from_cfg(_config(tmp_path / "b"))
    assert first.experiment_name != second.experiment_name
    assert second.visualizer is not first.visualizer, "MMEngine handed the first run's visualizer to the second"
    assert second.logger is not first.logger


def test_a_named_run_keeps_its_name(tmp_path: Path) -> None:
    import models  # noqa: F401

    cfg = _config(tmp_path / "c")
    cfg.experiment_name = "mine"
    runner = AtomicCheckpointRunner.from_cfg(cfg)
    assert runner.experiment_name.startswith("mine_")
