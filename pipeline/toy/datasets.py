"""Fashion-MNIST / MNIST for the toy reconstruction track: where the IDX files come from, and the Dataset.

Resolution order for each dataset (`resolve_idx_dir`), first hit wins:
  1. the folder given in params.yaml (`toy.data_dirs.<name>`); when set it is authoritative: a folder without
     the files is an error rather than a silent fall-back to other data;
  2. the Debian location (`/usr/share/datasets/<name>/`, from `apt-get install dataset-fashion-mnist`;
     Debian has no MNIST package);
  3. the download cache (`data/toy_cache/<name>/`), filled by
  4. a download from the official source, each file checked against its hard-coded md5.
When nothing works the error lists every place tried and the command that fixes it.

Splits (`ToyReconstructionDataset`): the last `min(5000, N // 10)` images of the training file are the
held-out validation pool (exactly the last 5,000 for the 60,000-image files); `train` takes the first `subset`
images before the pool, `val` the first `val_subset` of the pool, `test` the first `test_subset` of the test file.
Images are resized 28→32 with bilinear interpolation (align_corners=False, no antialiasing: what torchvision's
`Resize(32)` does when upsampling) and scaled to [0, 1]; the target is the input.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

from pipeline.toy.idx import read_idx, read_idx_pair
from pipeline.core.io import atomic_path

logger = logging.getLogger(__name__)

DEBIAN_ROOT = Path("/usr/share/datasets")
DEFAULT_CACHE = Path("data/toy_cache")
FILE_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
FILE_PATTERNS = {"train_images": "train*-images-idx3-ubyte", "train_labels": "train*-labels-idx1-ubyte",
                 "test_images": "t10k*-images-idx3-ubyte", "test_labels": "t10k*-labels-idx1-ubyte"}


@dataclass(frozen=True)
class OfficialSource:
    """Official download location and md5 of each gzipped file (as published by the dataset authors)."""

    base_urls: tuple[str, ...]
    md5: dict[str, str]


OFFICIAL = {
    "fashion-mnist": OfficialSource(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
    "mnist": OfficialSource(
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
}
FIX_COMMANDS = {
    "fashion-mnist": "apt-get install -y dataset-fashion-mnist",
    "mnist": "mkdir -p data/toy_cache/mnist && cp /PATH/TO/MNIST/{train,t10k}-*-ubyte.gz data/toy_cache/mnist/  "
             "(or set toy.data_dirs.mnist in params.yaml to that folder)",
}


class DatasetNotFoundError(FileNotFoundError):
    """No usable copy of a toy dataset; the message lists each place tried and the fix."""


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (plain or `.gz`), or None when any is missing or ambiguous."""
    found = {}
    for key, pattern in FILE_PATTERNS.items():
        matches = sorted(folder.glob(pattern)) + sorted(folder.glob(pattern + ".gz"))
        exact = [m for m in matches if m.name.split("-")[0] in ("train", "t10k")]
        chosen = exact or matches
        if len(chosen) != 1:
            return None
        found[key] = chosen[0]
    return found


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _download(name: str, cache: Path, timeout_s: float) -> dict[str, Path]:
    """Download the official files into `cache`, verifying md5; raise OSError describing the first failure."""
    source = OFFICIAL[name]
    for filename, md5 in source.md5.items():
        target = cache / filename
        if target.is_file() and _md5(target) == md5:
            continue
        errors = []
        for base in source.base_urls:
            try:
                with urllib.request.urlopen(base + filename, timeout=timeout_s) as response:
                    payload = response.read()
            except (urllib.error.URLError, OSError) as exc:
                errors.append(f"{base + filename}: {exc}")
                continue
            got = hashlib.md5(payload).hexdigest()
            if got != md5:
                errors.append(f"{base + filename}: md5 {got} != expected {md5}")
                continue
            with atomic_path(target) as tmp:
                tmp.write_bytes(payload)
            break
        else:
            raise OSError("; ".join(errors))
    files = find_idx_files(cache)
    if files is None:
        raise OSError(f"{cache}: downloaded files are incomplete")
    return files


def _cache_is_verified(name: str, cache: Path) -> bool:
    source = OFFICIAL[name]
    return all((cache / f).is_file() and _md5(cache / f) == md5 for f, md5 in source.md5.items())


def resolve_idx_dir(name: str, data_dirs: dict | None = None, cache_dir: str | Path = DEFAULT_CACHE,
                    allow_download: bool = True, debian_root: str | Path = DEBIAN_ROOT,
                    timeout_s: float = 20.0) -> dict[str, Path]:
    """Locate the four IDX files of `name` ('fashion-mnist' or 'mnist'), trying the places in the module order.

    Returns:
        {'train_images', 'train_labels', 'test_images', 'test_labels'} -> Path.
    """
    if name not in OFFICIAL:
        raise ValueError(f"toy dataset {name!r} is not known; choose one of {sorted(OFFICIAL)}")
    given = (data_dirs or {}).get(name)
    if given is not None:
        files = find_idx_files(Path(given))
        if files is None:
            raise DatasetNotFoundError(
                f"params.yaml toy.data_dirs.{name} = {given}: the folder does not hold exactly one of each of "
                f"{sorted(FILE_PATTERNS.values())} (plain or .gz)")
        logger.info("%s: using %s (params.yaml toy.data_dirs)", name, given)
        return files
    tried = [f"params.yaml toy.data_dirs.{name}: not set"]
    debian = Path(debian_root) / name
    files = find_idx_files(debian) if debian.is_dir() else None
    if files is not None:
        logger.info("%s: using the Debian copy in %s", name, debian)
        return files
    tried.append(f"{debian}: {'incomplete' if debian.is_dir() else 'absent'}")
    cache = Path(cache_dir) / name
    if cache.is_dir() and _cache_is_verified(name, cache):
        logger.info("%s: using the verified download cache %s", name, cache)
        return find_idx_files(cache)  # type: ignore[return-value]
    tried.append(f"{cache}: {'files missing or failing the official md5' if cache.is_dir() else 'absent'}")
    if allow_download:
        try:
            files = _download(name, cache, timeout_s)
            logger.info("%s: downloaded and verified into %s", name, cache)
            return files
        except OSError as exc:
            tried.append(f"download from {OFFICIAL[name].base_urls[0]}: {exc}")
    else:
        tried.append("download: disabled")
    listing = "\n".join(f"  {i}. {t}" for i, t in enumerate(tried, 1))
    raise DatasetNotFoundError(f"no usable copy of {name}. Places tried:\n{listing}\n"
                               f"Fix: {FIX_COMMANDS[name]}")


# ----------------------------------------------------------------------------------------------- arrays
def validation_pool_size(n_train_file: int) -> int:
    """Size of the held-out validation pool at the end of a training file: min(5000, N // 10)."""
    return min(5000, n_train_file // 10)


def resize_to_32(images: np.ndarray) -> torch.Tensor:
    """N×28×28 uint8 -> N×1×32×32 float32 in [0, 1] (bilinear, align_corners=False, no antialias)."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0).unsqueeze(1)
    return F.interpolate(tensor, size=(32, 32), mode="bilinear", align_corners=False, antialias=False)


@functools.lru_cache(maxsize=8)
def _load_split_cached(images_path: str, labels_path: str, mtime: float, start: int, stop: int) -> torch.Tensor:
    images, _ = read_idx_pair(images_path, labels_path)
    if images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images, got {images.dtype}")
    return resize_to_32(images[start:stop])


def split_range(split: str, n_train_file: int, n_test_file: int, count: int | None) -> tuple[int, int]:
    """[start, stop) of `split` ('train' | 'val' | 'test') within its file, `count` images at most."""
    pool = validation_pool_size(n_train_file)
    bounds = {"train": (0, n_train_file - pool), "val": (n_train_file - pool, n_train_file),
              "test": (0, n_test_file)}
    if split not in bounds:
        raise ValueError(f"split must be one of {sorted(bounds)}, got {split!r}")
    start, stop = bounds[split]
    if count is not None:
        if count <= 0:
            raise ValueError(f"{split} subset size must be positive, got {count}")
        stop = min(stop, start + count)
    if stop <= start:
        raise ValueError(f"{split} split is empty (train file {n_train_file}, test file {n_test_file} images)")
    return start, stop


@DATASETS.register_module()
class ToyReconstructionDataset(Dataset):
    """Reconstruction samples `{'inputs': 1×32×32 float32 in [0,1], 'data_samples': {'index': int}}`.

    Args:
        files (dict): the four IDX paths from `resolve_idx_dir` (keys `FILE_KEYS`).
        split (str): 'train', 'val' or 'test' (see the module docstring).
        count (int | None): at most this many images of the split. Default: None (all).
    """

    def __init__(self, files: dict, split: str, count: int | None = None) -> None:
        missing = [k for k in FILE_KEYS if k not in files]
        if missing:
            raise KeyError(f"ToyReconstructionDataset files lacks {missing}")
        self.split = split
        side = "test" if split == "test" else "train"
        images, labels = Path(files[f"{side}_images"]), Path(files[f"{side}_labels"])
        n_train = _count_images(Path(files["train_images"]))
        n_test = _count_images(Path(files["test_images"]))
        self.start, self.stop = split_range(split, n_train, n_test, count)
        self.images = _load_split_cached(str(images), str(labels), images.stat().st_mtime, self.start, self.stop)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict:
        return {"inputs": self.images[index], "data_samples": {"index": self.start + index}}


@functools.lru_cache(maxsize=16)
def _count_images_cached(path: str, mtime: float) -> int:
    return int(read_idx(path, ndim=3).shape[0])


def _count_images(path: Path) -> int:
    return _count_images_cached(str(path), path.stat().st_mtime)
