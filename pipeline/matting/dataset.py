"""MMEngine datasets over the composed matting data (`data/composed/`, written by the compose stage).

* `OnlineCompositionDataset` (training, spec 5.1): `train/fg_list.txt` names foregrounds in `train/fg/` with
  alphas in `train/alpha/`; `train/bg_list.txt` lists backgrounds (paths relative to `train/` or absolute).
  Sample `i` uses foreground `i mod n_fg`, a random background and (for the optional mix) a random second
  foreground, drawn from numpy's global generator, which MMEngine seeds per run and per worker. The length is
  max(n_fg, n_bg), as the official loader's (one pass over the backgrounds).
* `MattingValDataset` (validation): the held-out `val/` split listed in `val/list.txt`, full-size image, alpha and
  trimap per sample. The test split is never read here.

Names in the lists may carry the `.png` suffix or not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

from pipeline.core.io import read_name_list


IMAGE_SUFFIX = ".png"


def read_list(path: Path) -> list[str]:
    """The names of a list file, as written (`pipeline.core.io.read_name_list`: never stripped, blank lines
    skipped); raise FileNotFoundError / ValueError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list file not found (run the compose stage first)")
    entries = read_name_list(path)
    if not entries:
        raise ValueError(f"{path}: list file is empty")
    return entries


def _file_name(name: str) -> str:
    return name if name.endswith(IMAGE_SUFFIX) else name + IMAGE_SUFFIX


@DATASETS.register_module()
class OnlineCompositionDataset(BaseDataset):
    """Training foregrounds composited online onto random backgrounds.

    Args:
        data_root (str): the composed training folder (e.g. `data/composed/train`).
        pipeline (list[dict]): transforms (see `pipeline.matting.transforms`).
        mix_candidates (bool): attach a random second foreground to every sample for `MixSecondForeground`.
            Default: True.
        length (int, optional): dataset length; default max(n_fg, n_bg).
    """

    def __init__(self, data_root: str, pipeline: list, mix_candidates: bool = True, length: int | None = None,
                 **kwargs) -> None:
        self.mix_candidates, self._length = mix_candidates, length
        self.backgrounds: list[str] = []
        super().__init__(data_root=data_root, pipeline=pipeline, serialize_data=False, **kwargs)

    def load_data_list(self) -> list[dict]:
        root = Path(self.data_root)
        names = read_list(root / "fg_list.txt")
        self.backgrounds = [str(root / path) for path in read_list(root / "bg_list.txt")]
        items = []
        for name in names:
            fg, alpha = root / "fg" / _file_name(name), root / "alpha" / _file_name(name)
            for path in (fg, alpha):
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: listed in {root / 'fg_list.txt'} but missing")
            items.append({"name": Path(name).stem, "fg_path": str(fg), "alpha_path": str(alpha)})
        return items

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return self._length or max(len(self.data_list), len(self.backgrounds))

    def get_data_info(self, idx: int) -> dict:
        """Foreground `idx mod n_fg`, a random background and (optionally) a random second foreground."""
        info = dict(self.data_list[idx % len(self.data_list)])
        info["bg_path"] = self.backgrounds[np.random.randint(len(self.backgrounds))]
        if self.mix_candidates and len(self.data_list) > 1:
            other = self.data_list[np.random.randint(len(self.data_list))]
            info["fg2_path"], info["alpha2_path"] = other["fg_path"], other["alpha_path"]
        info["sample_idx"] = idx
        return info


@DATASETS.register_module()
class MattingValDataset(BaseDataset):
    """Validation images at full size: `{image,alpha,trimap}/<name>.png` listed in `list.txt` (every
    `image/*.png`, sorted, when the folder has no list.txt): the composed held-out `val/` split or a folder.

    Args:
        data_root (str): the composed validation folder (e.g. `data/composed/val`).
        pipeline (list[dict]): transforms; `LoadMattingValSample` then `PackMattingInputs(with_targets=False)`.
    """

    def __init__(self, data_root: str, pipeline: list, **kwargs) -> None:
        kwargs.setdefault("test_mode", True)
        super().__init__(data_root=data_root, pipeline=pipeline, serialize_data=False, **kwargs)

    def load_data_list(self) -> list[dict]:
        root = Path(self.data_root)
        items = []
        names = read_list(root / "list.txt") if (root / "list.txt").is_file() else \
            sorted(p.stem for p in (root / "image").glob("*" + IMAGE_SUFFIX))
        if not names:
            raise ValueError(f"{root}: no validation images (no list.txt and no image/*{IMAGE_SUFFIX})")
        for name in names:
            item = {"name": Path(name).stem}
            for kind in ("image", "alpha", "trimap"):
                path = root / kind / _file_name(name)
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: validation sample {name!r} of {root} has no {kind}")
                item[f"{kind}_path"] = str(path)
            items.append(item)
        return items

