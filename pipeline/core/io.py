"""Atomic writes and validated image reading, shared by every stage.

Every output is written to a temporary sibling and renamed into place, so an interrupted stage leaves the
previous output or nothing. Alpha mattes and trimaps are validated here once: uint8, single channel
(a 3-identical-channel PNG is read as grayscale, as the alphamatting.com files need), trimaps exactly 0/128/255.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

logger = logging.getLogger(__name__)

TRIMAP_VALUES = (0, 128, 255)


class ImageError(ValueError):
    """An image that is missing, unreadable or violates its convention (the message names the file)."""


# ----------------------------------------------------------------------------------------------- atomic writes
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    The file gets the permissions a plain `open()` would give (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary folder next to `path`; on success it replaces `path` whole, else it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Atomically write pretty, key-sorted JSON (numpy scalars converted)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Atomically write a uint8 PNG (RGB arrays are converted to OpenCV's BGR)."""
    path = Path(path)
    if image.dtype != np.uint8:
        raise ImageError(f"{path}: refusing to write dtype {image.dtype}; expected uint8")
    arr = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(path.suffix or ".png", np.ascontiguousarray(arr))
    if not ok:
        raise ImageError(f"{path}: OpenCV could not encode the image")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path


# ----------------------------------------------------------------------------------------------- reading
def _decode(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageError(f"{path}: unreadable or corrupt image")
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an 8-bit colour image as H×W×3 uint8 RGB (grayscale is broadcast; alpha channels are dropped)."""
    path = Path(path)
    image = _decode(path)
    if image.dtype != np.uint8:
        raise ImageError(f"{path}: expected 8-bit image, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        image = image[..., :3]
    if image.shape[2] != 3:
        raise ImageError(f"{path}: expected 1, 3 or 4 channels, got {image.shape[2]}")
    return np.ascontiguousarray(image[..., ::-1])


def read_gray(path: str | Path, what: str = "alpha") -> np.ndarray:
    """Read a single-channel uint8 map (alpha or trimap) as H×W.

    A 3- or 4-channel PNG whose colour channels are identical is accepted as grayscale (logged); differing
    channels or a 16-bit file raise ImageError naming the file.
    """
    path = Path(path)
    image = _decode(path)
    if image.dtype != np.uint8:
        raise ImageError(f"{path}: {what} must be 8-bit, got {image.dtype}")
    if image.ndim == 3:
        colour = image[..., :3]
        if not (np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])):
            raise ImageError(f"{path}: {what} has {image.shape[2]} channels that differ; expected a single channel")
        logger.debug("%s: %s stored with identical colour channels, read as grayscale", path, what)
        image = colour[..., 0]
    return np.ascontiguousarray(image)


def read_alpha(path: str | Path) -> np.ndarray:
    """Read an alpha matte as H×W uint8 (0–255)."""
    return read_gray(path, "alpha")


def validate_trimap(trimap: np.ndarray, source: str | Path) -> np.ndarray:
    """Check that a trimap holds only 0, 128 and 255; the error names `source` and the offending values."""
    values = np.unique(trimap)
    bad = [int(v) for v in values if int(v) not in TRIMAP_VALUES]
    if bad:
        raise ImageError(f"{source}: trimap holds values {bad[:8]} outside {{0, 128, 255}}"
                         + (" (127 is not the unknown value: use 128)" if 127 in bad else ""))
    return trimap


def read_trimap(path: str | Path) -> np.ndarray:
    """Read and validate a trimap (H×W uint8, exactly 0/128/255)."""
    return validate_trimap(read_gray(path, "trimap"), path)


def check_same_size(named: dict[str, np.ndarray], context: str) -> None:
    """Raise ImageError when the H×W of the arrays differ, listing each name with its size."""
    sizes = {name: arr.shape[:2] for name, arr in named.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{name} {h}x{w}" for name, (h, w) in sizes.items())
        raise ImageError(f"{context}: sizes do not match ({listing})")
