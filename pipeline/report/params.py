"""`report` section of params.yaml."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.core.params import ParamsError, check


@dataclass(frozen=True)
class ReportParams:
    """Settings of the report stage.

    title: the report's heading.
    qualitative_images: test images shown in the qualitative grid (input, trimap, truth, each variant).
    """

    title: str = "A2U reproduction report"
    qualitative_images: int = 3

    def __post_init__(self) -> None:
        check(self.qualitative_images >= 0, "report.qualitative_images", "must be >= 0", self.qualitative_images)


def run_variants(params_file: str | Path) -> list[str] | None:
    """params.yaml `train.variants` (the variants this run trains), or None when the file has no train section.

    The report shows only these: the folders a variant dropped from the list left behind are not this run's.
    Its type was checked by the params_check stage; a wrong one is still named here.
    """
    doc = yaml.safe_load(Path(params_file).read_text()) or {}
    train = doc.get("train")
    if not isinstance(train, dict) or "variants" not in train:
        return None
    names = train["variants"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ParamsError(f"{params_file}: train.variants must be a list of variant names, got {names!r}")
    return names
