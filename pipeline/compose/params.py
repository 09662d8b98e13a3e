"""`compose` section of params.yaml: which matting data to build, and how much of it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.params import ParamsError, check

SOURCES = ("synthetic", "comp1k", "d646", "folder")


@dataclass(frozen=True)
class RealSourceParams:
    """Settings shared by the real-data sources (`compose.comp1k`, `compose.d646`, `compose.folder`).

    n_val: training foregrounds held out as the validation split (null: none for comp1k — the published protocol
        trains on all 431 Adobe training foregrounds; compose.n_val for d646 and folder). A comp1k value > 0
        departs from the protocol on purpose (validation data then comes out of the training set).
    n_bg_train: backgrounds per training foreground (null: 100 for comp1k, else 1; comp1k consumes its list in
        order and fails when it is short).
    n_bg_val, n_bg_test: composites per validation / test foreground (null: min(2, n_bg_train); 20 for comp1k
        and d646, 1 for folder).
    write_test_fg_bg: also store each test composite's fg and bg (null: all sources but comp1k).
    max_train_fg, max_test_fg: use only the first N foregrounds (null: all).
    """

    n_val: int | None = None
    n_bg_train: int | None = None
    n_bg_val: int | None = None
    n_bg_test: int | None = None
    write_test_fg_bg: bool | None = None
    max_train_fg: int | None = None
    max_test_fg: int | None = None

    def _check_counts(self, section: str) -> None:
        for key in ("n_bg_train", "n_bg_val", "n_bg_test"):
            value = getattr(self, key)
            check(value is None or value >= 1, f"compose.{section}.{key}", "must be null or >= 1", value)
        for key in ("n_val", "max_train_fg", "max_test_fg"):
            value = getattr(self, key)
            check(value is None or value >= 0, f"compose.{section}.{key}", "must be null or >= 0", value)


@dataclass(frozen=True)
class Comp1kParams(RealSourceParams):
    """Adobe Composition-1k: `root` holds Training_set/ and Test_set/; backgrounds from COCO and VOC."""

    root: str = ""
    coco_dir: str = ""
    voc_dir: str = ""
    train_dir: str = "Training_set"
    test_dir: str = "Test_set"

    def __post_init__(self) -> None:
        self._check_counts("comp1k")


@dataclass(frozen=True)
class D646Params(RealSourceParams):
    """Distinctions-646: `root` with its Train/Test folders; backgrounds from two folders."""

    root: str = ""
    bg_train_dir: str = ""
    bg_test_dir: str = ""

    def __post_init__(self) -> None:
        self._check_counts("d646")


@dataclass(frozen=True)
class FolderParams(RealSourceParams):
    """Any folder with fg/, alpha/ and optional trimap/; backgrounds from `bg_dir` (and `bg_test_dir`)."""

    root: str = ""
    bg_dir: str = ""
    bg_test_dir: str | None = None

    def __post_init__(self) -> None:
        self._check_counts("folder")


@dataclass(frozen=True)
class ComposeParams:
    """Settings of the compose stage.

    source: synthetic (procedural, embedded: the default) | comp1k | d646 | folder (then its sub-section).
    n_train_fg, n_val, n_test, size: the procedural set's sizes; size is the side of every synthetic image.
        n_val is also the validation split held out of a d646 or folder source's training foregrounds (not
        comp1k's: see `compose.comp1k.n_val`), n_test caps a folder source's test split.
    n_train_bg: procedural training backgrounds (null: max(8, n_train_fg)).
    n_bg_val, n_bg_test: composites per procedural validation / test foreground.
    workers: composition processes (null: min(2, CPU count)).
    """

    source: Literal["synthetic", "comp1k", "d646", "folder"] = "synthetic"
    n_train_fg: int = 24
    n_val: int = 8
    n_test: int = 16
    size: int = 256
    n_train_bg: int | None = None
    n_bg_val: int = 1
    n_bg_test: int = 1
    workers: int | None = None
    comp1k: Comp1kParams | None = None
    d646: D646Params | None = None
    folder: FolderParams | None = None

    def __post_init__(self) -> None:
        for key in ("n_train_fg", "n_val", "n_test"):
            check(getattr(self, key) >= 0, f"compose.{key}", "must be >= 0", getattr(self, key))
        check(self.source != "synthetic" or self.size >= 16, "compose.size", "must be >= 16", self.size)
        check(self.n_train_bg is None or self.n_train_bg >= 0, "compose.n_train_bg", "must be null or >= 0",
              self.n_train_bg)
        check(self.n_bg_val >= 1 and self.n_bg_test >= 1, "compose.n_bg_val/n_bg_test", "must be >= 1",
              (self.n_bg_val, self.n_bg_test))
        check(self.workers is None or self.workers >= 1, "compose.workers", "must be null or >= 1", self.workers)

    def real_source(self) -> Comp1kParams | D646Params | FolderParams:
        """The sub-section of the chosen real source; its required paths must be set."""
        sub = getattr(self, self.source)
        required = {"comp1k": ("root", "coco_dir", "voc_dir"), "d646": ("root", "bg_train_dir", "bg_test_dir"),
                    "folder": ("root", "bg_dir")}[self.source]
        for key in required:
            if sub is None or not getattr(sub, key):
                raise ParamsError(f"params.yaml: 'compose.{self.source}.{key}' is required for source "
                                  f"'{self.source}'")
        return sub
