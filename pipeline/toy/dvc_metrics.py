"""The toy stage's DVC metrics: small flat files a person compares across runs (`dvc metrics show/diff`).

`results/toy/psnr/<operator>.json` and `results/toy/ssim/<operator>.json` each hold one number per dataset:
the test PSNR (dB) / SSIM of the checkpoint with the best validation PSNR, mean over seeds:

    results/toy/psnr/a2u.json   {"fashion-mnist": 15.43, "mnist": 12.31}

One small file per operator and measure keeps `dvc metrics show` a compact table (a row per operator, a column
per dataset) that fits 120 columns next to the matting metrics. Everything else (std over seeds, last-epoch
values, MAE/MSE, budget, the datasets that could not run) stays in `results/toy/summary.json`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.io import atomic_dir, write_json

#: DVC metric files written per operator: measure -> key in the summary's `best` block.
MEASURES = ("psnr", "ssim")


def toy_metric_rows(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """{measure: {operator: {dataset: best-checkpoint test value, mean over seeds}}} from the toy summary."""
    rows: dict[str, dict[str, dict[str, float]]] = {measure: {} for measure in MEASURES}
    for dataset, per_operator in (summary.get("results") or {}).items():
        for operator, result in per_operator.items():
            for measure in MEASURES:
                rows[measure].setdefault(operator, {})[dataset] = float(result["best"][measure]["mean"])
    return rows


def write_toy_metrics(summary: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write `<out_dir>/<measure>/<operator>.json` (each folder replaced as a whole); return the folders."""
    folders = []
    for measure, per_operator in toy_metric_rows(summary).items():
        with atomic_dir(Path(out_dir) / measure) as tmp:
            for operator, values in per_operator.items():
                write_json(tmp / f"{operator}.json", values)
        folders.append(Path(out_dir) / measure)
    return folders
