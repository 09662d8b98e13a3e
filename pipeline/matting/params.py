"""`train` and `evaluate` sections of params.yaml (the training recipe itself is a config file, configs/matting/)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from models.matting.inputs import NETWORK_STRIDE
from pipeline.core.params import BUDGETS, BaseParams, ParamsError, check, load_params, load_stage
from pipeline.matting.tiling import check_tile_size, default_overlap


#: `train.encoder_weights` / `train.val_source` value that switches the config's choice off.
NONE = "none"


def registered_pairs() -> list[str]:
    """Names of every registered operator pair (the valid `train.variants`), from the registry."""
    import models.ops  # noqa: F401  (registers the pairs)
    from models.registry import OPERATOR_PAIRS

    return sorted(name for name in OPERATOR_PAIRS.module_dict if not name.startswith("_"))


@dataclass(frozen=True)
class TrainParams:
    """Settings of `train@<variant>` (one MMEngine run per variant). The recipe is a config file; keys set here
    override it, and a null key keeps the config's value.

    variants: registered operator-pair names (`models/ops/pairs.py`); each becomes train@<name>-<seed> and
        evaluate@<name> with `model.network.upsampler=<name>`.
    seeds: training seeds; each variant is trained once per seed (the runner's `randomness.seed`), and variants
        are compared seed by seed.
    config: the config file; null: the profile's (`configs/matting/*_<base.profile>.py`).
    lr: learning rate of the new layers (the encoder's is lr/100, from the config's `paramwise_cfg`).
    iters: training iterations; the config's lr milestones are scaled with it.
    crop: training crop side (a multiple of 16); batch_size: the total over all processes.
    val_interval: validate (when there is validation) and checkpoint every this many iterations.
    num_workers: data-loading processes per training process.
    flops_size: input side at which the summary reports the network's MACs; null: the training crop.
    encoder_weights: ImageNet ResNet-34 weights for the encoder: a local file (torchvision, official or own keys)
        or an https URL (downloaded once into torch.hub's cache, hash checked); 'none': random init.
    val_source: validation data: 'composed' (the composed set's held-out val/ split), a folder with image/,
        alpha/, trimap/, or 'none' (no validation: the last checkpoint is evaluated). Never the test split.
    width: channel multiplier of the network (`model.network.width`): 1.0 is the paper's network, 0.25 the
        "mini" network of the CPU profiles; ImageNet encoder weights need 1.0.
    """

    variants: tuple[str, ...] = ("bilinear", "a2u")
    seeds: tuple[int, ...] = (0, 1, 2)
    config: str | None = None
    lr: float | None = None
    iters: int | None = None
    crop: int | None = None
    batch_size: int | None = None
    val_interval: int | None = None
    num_workers: int | None = None
    flops_size: int | None = None
    encoder_weights: str | None = None
    val_source: str | None = None
    width: float | None = None

    def __post_init__(self) -> None:
        check(len(self.seeds) > 0 and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                          for s in self.seeds),
              "train.seeds", "must be a non-empty list of integer seeds >= 0", self.seeds)
        check(len(set(self.seeds)) == len(self.seeds), "train.seeds", "must not repeat a seed", self.seeds)
        check(self.width is None or 0 < self.width <= 1, "train.width", "must be null or in (0, 1]", self.width)
        check(len(self.variants) > 0, "train.variants", "must name at least one operator pair", self.variants)
        check(len(set(self.variants)) == len(self.variants), "train.variants", "must not repeat a name",
              self.variants)
        known = registered_pairs()
        for name in self.variants:
            check(name in known, "train.variants", f"must name registered operator pairs ({', '.join(known)})",
                  name)
        check(self.lr is None or self.lr > 0, "train.lr", "must be > 0", self.lr)
        for key in ("iters", "batch_size", "val_interval", "flops_size"):
            value = getattr(self, key)
            check(value is None or value >= 1, f"train.{key}", "must be >= 1", value)
        check(self.crop is None or (self.crop >= NETWORK_STRIDE and self.crop % NETWORK_STRIDE == 0), "train.crop",
              f"must be a positive multiple of {NETWORK_STRIDE} (the network's output stride)", self.crop)
        check(self.num_workers is None or self.num_workers >= 0, "train.num_workers", "must be >= 0",
              self.num_workers)
        for key in ("config", "encoder_weights", "val_source"):
            value = getattr(self, key)
            check(value is None or value.strip() != "", f"train.{key}", "must be null or a non-empty string", value)


def load_train_params(path: str | Path) -> tuple[BaseParams, TrainParams]:
    """(`base`, `train`) of the params file; the train section has no `budgets` (each profile's recipe is its
    config file, and every train key is written in params.yaml so DVC can track it: a budget could never apply)."""
    if BUDGETS in (load_params(path).get("train") or {}):
        raise ParamsError(f"params.yaml: train.{BUDGETS} is not used: each profile's training recipe is its config "
                          f"file (configs/matting/*_<profile>.py); set a train key directly to override it")
    return load_stage(path, "train", TrainParams)


@dataclass(frozen=True)
class EvaluateParams:
    """Settings of `evaluate@<variant>` (full-resolution inference and the MATLAB-exact metrics).

    checkpoint: which exported checkpoint to evaluate: auto (best when the run validated, else last) | best
        (lowest validation SAD; an error when the run did not validate) | last. metrics.json records which one
        (and its iteration) every number comes from.
    sets: extra evaluation-only sets: name -> {path, trimap_dir} (each gets a DVC stage evalsets@<name>).
    tile, tile_overlap: null = whole image; an int bounds memory with overlapping tiles of that size.
    tile_check: also evaluate the test split with this tile size and report the effect (null = skip).
    continue_on_error: record an image that fails and go on (the stage still fails at the end), or stop.
    """

    checkpoint: Literal["auto", "best", "last"] = "auto"
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
