"""`report` section of params.yaml."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import check


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
