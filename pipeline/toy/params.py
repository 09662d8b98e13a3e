"""`toy` section of params.yaml: the toy reconstruction study's settings (defaults: the full protocol)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from models.ops.pairs import PAIR_NAMES
from pipeline.core.params import check

#: Datasets the toy stage knows how to find (see pipeline.toy.datasets).
TOY_DATASETS = ("fashion-mnist", "mnist")


@dataclass(frozen=True)
class ToyParams:
    """Settings of the toy stage (every (dataset, operator, seed) is one run).

    datasets: which of `TOY_DATASETS` to run, in table order.
    data_dirs: dataset -> folder holding its four IDX files (null: Debian path, checksummed cache, download).
    on_missing_dataset: report (list a dataset that cannot be found as NOT RUN, with the fix) | error.
    operators: registered operator-pair names, in table order (default: the nine pairs of `PAIR_NAMES`).
    subset, val_subset, test_subset: images per split (null: the whole split; validation is the last 5,000
        training images).
    epochs, batch_size, seeds: the training budget; each seed is one run.
    workers: runs trained at the same time, each in its own process (results do not depend on it).
    threads: torch threads of each run (part of a run's identity: float sums depend on it).
    baseline, confidence: every operator's best test PSNR is compared with the baseline's, paired by seed,
        with a Student-t interval at this confidence (pipeline.toy.stats).
    config_overrides: dotted MMEngine config keys merged into every run's config (e.g. `model.channels`).
    """

    datasets: tuple[str, ...] = TOY_DATASETS
    data_dirs: dict[str, str | None] = field(default_factory=dict)
    on_missing_dataset: Literal["report", "error"] = "report"
    operators: tuple[str, ...] = PAIR_NAMES
    subset: int | None = None
    val_subset: int | None = None
    test_subset: int | None = None
    epochs: int = 100
    batch_size: int = 100
    seeds: tuple[int, ...] = (0, 1, 2)
    workers: int = 2
    threads: int = 1
    baseline: str = "bilinear"
    confidence: float = 0.95
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(len(self.datasets) > 0, "toy.datasets", "must name at least one dataset", self.datasets)
        for name in (*self.datasets, *self.data_dirs):
            check(name in TOY_DATASETS, "toy.datasets / toy.data_dirs", f"must be among {list(TOY_DATASETS)}",
                  name)
        check(len(self.operators) > 0, "toy.operators", "must name at least one operator pair", self.operators)
        check(len(set(self.operators)) == len(self.operators), "toy.operators", "must not repeat a name",
              self.operators)
        check(len(self.seeds) > 0 and min(self.seeds) >= 0, "toy.seeds", "must be a non-empty list of seeds >= 0",
              self.seeds)
        check(len(set(self.seeds)) == len(self.seeds), "toy.seeds", "must not repeat a seed", self.seeds)
        for key in ("subset", "val_subset", "test_subset"):
            value = getattr(self, key)
            check(value is None or value >= 1, f"toy.{key}", "must be null or >= 1", value)
        check(self.epochs >= 1, "toy.epochs", "must be >= 1", self.epochs)
        check(self.batch_size >= 1, "toy.batch_size", "must be >= 1", self.batch_size)
        check(self.workers >= 1, "toy.workers", "must be >= 1", self.workers)
        check(self.threads >= 1, "toy.threads", "must be >= 1", self.threads)
        check(0 < self.confidence < 1, "toy.confidence", "must be in (0, 1)", self.confidence)

    @property
    def counts(self) -> dict[str, int | None]:
        """Images per split: {'train': subset, 'val': val_subset, 'test': test_subset}."""
        return {"train": self.subset, "val": self.val_subset, "test": self.test_subset}
