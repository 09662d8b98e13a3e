"""`ValidationCurveHook`: the validation PSNR of every epoch of a toy run, kept in `curve.json` beside the run.

The report draws learning curves from it (mean over seeds per operator) and the toy study reads from them
whether its epochs reach the plateau. The file is rewritten atomically after every validation; on resume the
epochs after the resumed checkpoint are dropped first (they are validated again), so an interrupted run ends
with the curve of an uninterrupted one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from pipeline.core.io import write_json

CURVE_NAME = "curve.json"


def read_curve(work_dir: str | Path) -> dict[str, list[float]]:
    """{'epoch': [...], 'psnr': [...], 'ssim': [...]} of a run folder ({} when none was written)."""
    path = Path(work_dir) / CURVE_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


@HOOKS.register_module()
class ValidationCurveHook(Hook):
    """Append `<prefix>/psnr` and `<prefix>/ssim` of each validation to `<work_dir>/curve.json`.

    Args:
        prefix (str): the evaluator's metric prefix. Default: 'recon'.
    """

    priority = "LOW"

    def __init__(self, prefix: str = "recon") -> None:
        self.prefix = prefix

    def before_train(self, runner: Any) -> None:
        curve = read_curve(runner.work_dir)
        keep = [i for i, epoch in enumerate(curve.get("epoch", [])) if epoch <= runner.epoch]
        self.curve = {key: [values[i] for i in keep] for key, values in curve.items()} if curve else \
            {"epoch": [], "psnr": [], "ssim": []}

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        if not hasattr(self, "curve"):  # a validation outside training (runner.val()): not part of the curve
            return
        metrics = metrics or {}
        self.curve["epoch"].append(int(runner.epoch))
        for key in ("psnr", "ssim"):
            self.curve[key].append(float(metrics[f"{self.prefix}/{key}"]))
        write_json(Path(runner.work_dir) / CURVE_NAME, self.curve)
