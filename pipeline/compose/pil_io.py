"""Reading source images with PIL, as Adobe's Composition_code.py and mmagic's converter do.

Why not pipeline.core.io (OpenCV)? JPEG decoders differ by a grey level here and there, and Composition-1k
parity needs the decoder of the reference script. The checks are the same as pipeline.core.io's: a missing or
unreadable file, a 16-bit map, an alpha whose colour channels differ all raise pipeline.core.io.ImageError naming
the file.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.core.io import ImageError

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image with PIL; ImageError names the file when missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.load()
                return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: unreadable or corrupt image ({exc})") from exc


def pil_rgb(path: str | Path) -> Image.Image:
    """Open a colour image as PIL mode 'RGB' (grayscale replicated, alpha channel dropped), as Adobe's script."""
    image = open_image(path)
    if image.mode in _SIXTEEN_BIT_MODES:
        raise ImageError(f"{path}: expected an 8-bit colour image, got PIL mode {image.mode}")
    return image if image.mode == "RGB" else image.convert("RGB")


def read_rgb_pil(path: str | Path) -> np.ndarray:
    """H×W×3 uint8 RGB decoded by PIL."""
    return np.asarray(pil_rgb(path), dtype=np.uint8).copy()


def read_gray_pil(path: str | Path, what: str = "alpha") -> np.ndarray:
    """H×W uint8 single-channel map decoded by PIL; identical colour channels are accepted as grayscale."""
    image = open_image(path)
    if image.mode in _SIXTEEN_BIT_MODES:
        raise ImageError(f"{path}: {what} must be 8-bit, got PIL mode {image.mode} (16-bit or float)")
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    if image.mode == "P":
        image = image.convert("RGB")
    if image.mode == "LA":
        return np.asarray(image, dtype=np.uint8)[..., 0].copy()
    arr = np.asarray(image.convert("RGB") if image.mode not in ("RGB", "RGBA") else image, dtype=np.uint8)
    colour = arr[..., :3]
    if not (np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])):
        raise ImageError(f"{path}: {what} has {arr.shape[2]} channels that differ; expected a single channel")
    return colour[..., 0].copy()
