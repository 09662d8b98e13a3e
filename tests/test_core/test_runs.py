"""The shared run engine (`pipeline.core.runs`): schedule scaling, checkpoint names, run folders."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from pipeline.core.runs import (checkpoint_step, code_fingerprint, find_best_checkpoint, find_resume_checkpoint,
                                open_run, prune_other_runs, run_fingerprint, scale_schedule, strip_prefixes)

REPO = Path(__file__).resolve().parents[2]


def _epoch_config(max_epochs: int = 100, milestones=(50, 70, 85)) -> Config:
    return Config(dict(train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=max_epochs),
                       param_scheduler=[dict(type="MultiStepLR", by_epoch=True, milestones=list(milestones))]))


@pytest.mark.parametrize("epochs, expected", [(100, [50, 70, 85]), (10, [5, 7, 8]), (4, [2, 3]), (2, [1]), (1, [])])
def test_the_configs_own_milestones_scale_with_the_budget(epochs: int, expected: list[int]) -> None:
    cfg = _epoch_config()
    assert scale_schedule(cfg, epochs) == expected
    assert cfg.train_cfg.max_epochs == epochs and cfg.param_scheduler[0]["milestones"] == expected


def test_iteration_schedules_scale_from_the_matting_recipe() -> None:
    recipe = Config.fromfile(str(REPO / "configs/matting/a2u-matting_r34_2xb8-180k_comp1k-512px_paper.py"))
    assert recipe.param_scheduler[0]["milestones"] == [120000, 156000]  # 2/3 and 13/15 of 180k (spec 5.3)
    assert scale_schedule(recipe, 900) == [600, 780] and recipe.train_cfg.max_iters == 900
    with pytest.raises(ValueError, match=">= 1"):
        scale_schedule(_epoch_config(), 0)


def test_a_cosine_schedule_spans_the_new_length() -> None:
    """`train.iters` must move a cosine's end with the run (else the lr would stop half-way, or never decay)."""
    cfg = Config(dict(train_cfg=dict(type="IterBasedTrainLoop", max_iters=400),
                      param_scheduler=[dict(type="LinearLR", by_epoch=False, begin=0, end=40, start_factor=0.1),
                                       dict(type="CosineAnnealingLR", by_epoch=False, begin=40, end=400, T_max=360)]))
    assert scale_schedule(cfg, 800) == []
    warmup, cosine = cfg.param_scheduler
    assert (warmup["begin"], warmup["end"]) == (0, 80)
    assert (cosine["begin"], cosine["end"], cosine["T_max"]) == (80, 800, 720)


def test_checkpoint_names_of_both_loops(tmp_path: Path) -> None:
    assert checkpoint_step("iter_900.pth") == 900 and checkpoint_step("epoch_3.pth") == 3
    assert checkpoint_step("best_val_sad_iter_300.pth") == 300 and checkpoint_step("best_recon_psnr_epoch_2.pth") == 2
    with pytest.raises(ValueError, match="checkpoint name"):
        checkpoint_step("last.pth")
    for name in ("iter_2.pth", "iter_10.pth", ".iter_12.pth.tmp", "best_val_sad_iter_2.pth"):
        (tmp_path / name).write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path).name == "iter_10.pth"  # a temporary is never picked
    assert find_best_checkpoint(tmp_path).name == "best_val_sad_iter_2.pth"
    assert find_resume_checkpoint(tmp_path / "absent") is None


def test_run_folders_reuse_resume_and_prune(tmp_path: Path) -> None:
    fresh = open_run(tmp_path, "aaaa")
    assert fresh.path == (tmp_path / "aaaa").resolve() and fresh.result is None and fresh.resume_from is None
    (fresh.path / "epoch_1.pth").write_bytes(b"x")
    assert open_run(tmp_path, "aaaa").resume_from.name == "epoch_1.pth"
    fresh.write_result({"psnr": 20.0})
    done = open_run(tmp_path, "aaaa")
    assert done.result == {"psnr": 20.0} and done.resume_from is None
    other = open_run(tmp_path, "bbbb")
    assert prune_other_runs(tmp_path, keep=other.path) == [done.path] and not done.path.exists()


def test_fingerprints_change_with_config_code_and_data(tmp_path: Path) -> None:
    cfg = _epoch_config()
    code = ("pipeline/core/runs.py",)
    base = run_fingerprint(cfg, code, {"set_hash": "1"})
    assert run_fingerprint(cfg, code, {"set_hash": "1"}) == base
    assert run_fingerprint(cfg, code, {"set_hash": "2"}) != base
    assert run_fingerprint(_epoch_config(milestones=(50, 70)), code, {"set_hash": "1"}) != base
    assert run_fingerprint(cfg, ("pipeline/core/io.py",), {"set_hash": "1"}) != base
    cfg.work_dir = "/elsewhere"  # where a run lives is not what it is
    assert run_fingerprint(cfg, code, {"set_hash": "1"}) == base
    (tmp_path / "a.py").write_text("x = 1\n")
    before = code_fingerprint(["*.py"], root=tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_fingerprint(["*.py"], root=tmp_path) != before


def test_strip_prefixes() -> None:
    assert strip_prefixes({"val/sad": 1, "recon/psnr": 2.5, "x": 3}, ["sad", "psnr"]) == {"sad": 1.0, "psnr": 2.5}
