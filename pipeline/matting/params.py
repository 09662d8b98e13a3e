"""`train` and `evaluate` sections of params.yaml (defaults: the paper recipe, spec §5)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from models.matting.inputs import NETWORK_STRIDE
from pipeline.core.params import ParamsError, check
from pipeline.matting.tiling import check_tile_size, default_overlap


@dataclass(frozen=True)
class TrainParams:
    """Settings of `train@<variant>` (one MMEngine run per variant; the config file holds the recipe).

    variants: operator-pair names of the matting networks to train (each becomes train@<name>, evaluate@<name>).
    lr: learning rate of the new layers (the encoder's is lr/100, from the config's `paramwise_cfg`).
    iters: training iterations; the config's lr milestones are scaled with it.
    crop: training crop side (a multiple of 16); batch_size: the total over all processes.
    val_interval: validate (and checkpoint) every this many iterations.
    num_workers: data-loading processes per training process.
    flops_size: input side at which the summary reports the network's MACs.
    """

    variants: tuple[str, ...] = ("bilinear", "a2u")
    lr: float = 0.01
    iters: int = 180000
    crop: int = 512
    batch_size: int = 16
    val_interval: int = 6000
    num_workers: int = 4
    flops_size: int = 512

    def __post_init__(self) -> None:
        check(len(self.variants) > 0, "train.variants", "must name at least one operator pair", self.variants)
        check(len(set(self.variants)) == len(self.variants), "train.variants", "must not repeat a name",
              self.variants)
        check(self.lr > 0, "train.lr", "must be > 0", self.lr)
        for key in ("iters", "batch_size", "val_interval", "flops_size"):
            check(getattr(self, key) >= 1, f"train.{key}", "must be >= 1", getattr(self, key))
        check(self.crop >= NETWORK_STRIDE and self.crop % NETWORK_STRIDE == 0, "train.crop",
              f"must be a positive multiple of {NETWORK_STRIDE} (the network's output stride)", self.crop)
        check(self.num_workers >= 0, "train.num_workers", "must be >= 0", self.num_workers)


@dataclass(frozen=True)
class EvaluateParams:
    """Settings of `evaluate@<variant>` (full-resolution inference and the MATLAB-exact metrics).

    checkpoint: which exported checkpoint to evaluate: best (lowest validation SAD) | last.
    sets: extra evaluation-only sets: name -> {path, trimap_dir} (each gets a DVC stage evalsets@<name>).
    tile, tile_overlap: null = whole image; an int bounds memory with overlapping tiles of that size.
    tile_check: also evaluate the test split with this tile size and report the effect (null = skip).
    continue_on_error: record an image that fails and go on (the stage still fails at the end), or stop.
    """

    checkpoint: Literal["best", "last"] = "best"
    sets: dict[str, Any] = field(default_factory=dict)
    tile: int | None = None
    tile_overlap: int | None = None
    tile_check: int | None = 128
    continue_on_error: bool = False

    def tiling(self) -> tuple[int | None, int | None]:
        """(tile, overlap) of the main evaluation: (None, None) for whole images."""
        if self.tile is None:
            return None, None
        return self.tile, default_overlap(self.tile, NETWORK_STRIDE) if self.tile_overlap is None else self.tile_overlap

    def __post_init__(self) -> None:
        check(self.tile is not None or self.tile_overlap is None, "evaluate.tile_overlap",
              "needs evaluate.tile (it is the overlap of tiles)", self.tile_overlap)
        for key, tile, overlap in (("evaluate.tile/tile_overlap", self.tile, self.tile_overlap),
                                   ("evaluate.tile_check", self.tile_check, None)):
            if tile is not None:
                try:
                    check_tile_size(tile, NETWORK_STRIDE, default_overlap(tile, NETWORK_STRIDE)
                                    if overlap is None else overlap)
                except ValueError as err:
                    raise ParamsError(f"params.yaml: {key}: {err}") from err
        for name, entry in self.sets.items():
            check(isinstance(entry, dict) and "path" in entry and set(entry) <= {"path", "trimap_dir"},
                  f"evaluate.sets.{name}", "must be a mapping {path: folder[, trimap_dir]} (DVC's evalsets stage "
                  "reads its path)", entry)
