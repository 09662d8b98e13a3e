"""Atomic writes, stale-temporary cleanup and the one image-reading path, shared by every stage.

Every output is written to a temporary sibling and renamed into place, so an interrupted stage leaves the
previous output or nothing; `remove_stale_temps` deletes what a killed writer left, and each stage calls it for
its own outputs when it starts.

Every image of the project (composition sources, composed sets, evaluation sets, training samples) is found and
read here, with one rule set:
- accepted files: IMAGE_SUFFIXES in any case (`a.PNG` is `a`), hidden files never; names are used exactly as
  written (never stripped); two files for one name are an error;
- decoding: PIL (the decoder of Adobe's composition script); a missing, empty, truncated or unreadable file and
  anything above 8 bits per channel (16-bit PNG/TIFF) raise ImageError naming the file;
- alpha mattes and trimaps: uint8, single channel (an RGB file with identical channels is read as grayscale, as
  the alphamatting.com files need); every trimap read is checked to hold exactly 0/128/255.
"""
from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

TRIMAP_VALUES = (0, 128, 255)
#: The one list of image extensions every reader accepts (compared lower-case).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: PIL modes of more than 8 bits per channel, with what they are.
_WIDE_MODES = {"I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
               "I;16N": "16-bit grayscale", "I": "32-bit integer", "F": "32-bit float"}


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
    """Yield a fresh temporary folder next to `path`; on success it replaces `path` whole, else it is removed.

    Temporaries that an interrupted earlier call for the same `path` left beside it are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove(_sibling_temps(path))
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


# ----------------------------------------------------------------------------------------------- stale temporaries
#: The random part of a `tempfile` name: 8 characters of [a-z0-9_].
_RANDOM = "?" * 8


def _sibling_temps(path: Path) -> list[Path]:
    """`.<name>.<8 random chars>.tmp` and `.<name>.old` beside `path`: an interrupted atomic_path/atomic_dir."""
    if not path.parent.is_dir():
        return []
    found = sorted(path.parent.glob(f".{glob.escape(path.name)}.{_RANDOM}.tmp"))
    old = path.with_name(f".{path.name}.old")
    return found + ([old] if old.exists() or old.is_symlink() else [])


def _remove(paths: list[Path]) -> None:
    for stale in paths:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        logger.info("removed %s, left by an interrupted run", stale)


def stale_temps(path: str | Path) -> list[Path]:
    """What interrupted writers of `path` left: the siblings `.<name>.<8 random chars>.tmp` (`atomic_path`,
    `atomic_dir`) and `.<name>.old` (`atomic_dir`), and, when `path` is a folder, every `.*.tmp` inside it."""
    path = Path(path)
    found = _sibling_temps(path)
    if path.is_dir():
        for inner in sorted(path.rglob(".*.tmp")):
            if not any(parent in found for parent in inner.parents):
                found.append(inner)
    return found


def remove_stale_temps(*paths: str | Path) -> list[Path]:
    """Delete the leftovers of interrupted writers of `paths` (see `stale_temps`); log and return them.

    Every stage calls this for its own outputs when it starts, so a `kill -9` at any moment leaves nothing that a
    later run or another stage could read. Only the temporaries of the given outputs are touched.
    """
    removed = [stale for path in paths for stale in stale_temps(path)]
    _remove(removed)
    return removed


def stale_temps_under(*roots: str | Path) -> list[Path]:
    """Every leftover of an interrupted atomic write anywhere under the folders `roots`: hidden entries named
    `.<name>.<8 random chars>.tmp`, `.<name>.tmp` (a checkpoint save) or `.<name>.old` (the outermost one of
    each nest), the same patterns `.dvcignore` keeps out of DVC's hashes. For the cleanup before `dvc repro`
    (`pipeline.params_check --remove-leftovers`): a stage that DVC restores from its cache never starts, so it
    cannot remove its own leftovers."""
    found: list[Path] = []
    for root in (Path(r) for r in roots):
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted([*dirnames, *filenames]):
                if name.startswith(".") and name.endswith((".tmp", ".old")) and len(name) > 5:
                    found.append(Path(dirpath) / name)
            dirnames[:] = [d for d in dirnames if not (d.startswith(".") and d.endswith((".tmp", ".old")))]
    return found


# ----------------------------------------------------------------------------------------------- file names
def is_image_file(path: str | Path) -> bool:
    """A file whose extension is one of IMAGE_SUFFIXES (any case) and whose name is not hidden (`.` first)."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def image_files(folder: str | Path) -> list[Path]:
    """The image files of `folder` (IMAGE_SUFFIXES, any case), sorted by name.

    Hidden files (`._x.png`, temporaries) and other extensions are not images: they are skipped with one
    warning that lists them. FileNotFoundError names the folder when it is absent or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found")
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    files = [p for p in entries if is_image_file(p)]
    skipped = [p.name for p in entries if p not in files]
    if skipped:
        logger.warning("%s: ignoring %d file(s) that are hidden or not %s images: %s", folder, len(skipped),
                       "/".join(s.lstrip(".") for s in IMAGE_SUFFIXES), skipped[:10])
    if not files:
        raise FileNotFoundError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}, any case)")
    return files


def index_images(folder: str | Path) -> dict[str, Path]:
    """{name: path} of the image files of `folder` (see `is_image_file`); {} when the folder is absent.

    The name is the file name without its extension, exactly as written. Two files of one name (`a.png` and
    `a.JPG`) are ambiguous: ImageError lists them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_image_file(path) and path.is_file():
            if path.stem in index:
                raise ImageError(f"{folder}: several files for the name '{path.stem}': "
                                 f"{[index[path.stem].name, path.name]}; keep one")
            index[path.stem] = path
    return index


def find_image(folder: str | Path, stem: str) -> Path | None:
    """The image file `<folder>/<stem>.<any accepted suffix, any case>`, or None (see `index_images`)."""
    return index_images(folder).get(stem)


def describe_expected(folder: str | Path, stem: str) -> str:
    """How a missing image is named in errors: `<folder>/<stem>.{png,jpg,...}`."""
    return f"{Path(folder) / stem}.{{{','.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}}}"


def read_name_list(path: str | Path) -> list[str]:
    """The names of a list file (`list.txt`, `fg_list.txt`, Adobe's `*_names.txt`): one per line, as written.

    Only the line ends are removed and blank lines skipped: a name is never stripped, so `" a"` stays the file
    `" a.png"` that composition wrote. FileNotFoundError names the list when it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: name list not found")
    return [line for line in path.read_text().splitlines() if line.strip()]


def set_names(root: str | Path, image_dir: str = "image") -> tuple[list[str], str]:
    """The names of an image set and where they came from: `<root>/list.txt` (as written) when present, else
    the names of the image files in `<root>/<image_dir>` (sorted). Composition, the evaluation-set validator
    and evaluation all list a set this way.

    Raises FileNotFoundError for a missing root or image folder, ValueError for an empty list or duplicates.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: folder not found")
    list_file = root / "list.txt"
    if list_file.is_file():
        names, source = read_name_list(list_file), str(list_file)
    else:
        names, source = [p.stem for p in image_files(root / image_dir)], f"{root / image_dir}/*"
    if not names:
        raise ValueError(f"{source}: no names listed")
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{source}: duplicate names {duplicates[:5]}")
    return names, source


# ----------------------------------------------------------------------------------------------- reading
def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode one image with PIL, after the checks every reader shares.

    ImageError names the file when it is missing, empty, not an accepted extension, unreadable or truncated, or
    stores more than 8 bits per channel (16-bit PNG/TIFF, float): those are rejected everywhere, never
    silently reduced (PIL itself would truncate a 48-bit RGB PNG to 8 bits without a word).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: file not found")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: extension '{path.suffix}' is not an accepted image type "
                         f"({', '.join(IMAGE_SUFFIXES)}, any case)")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                depth = _bit_depth_problem(image)
                if depth:
                    raise ImageError(f"{path}: {depth}; only 8-bit images are read (convert it to 8 bits per "
                                     "channel first, e.g. `convert in.png -depth 8 out.png`)")
                image.load()
                return image.copy()
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: unreadable or corrupt image ({exc})") from exc


def _bit_depth_problem(image: Image.Image) -> str | None:
    """Why `image` (opened, not loaded) is not 8 bits per channel, or None."""
    if image.mode in _WIDE_MODES:
        return f"{_WIDE_MODES[image.mode]} (PIL mode {image.mode})"
    for tile in image.tile or ():
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and (";16" in rawmode or ";32" in rawmode):
            return f"{rawmode.split(';')[1][:2]} bits per channel (stored as {rawmode})"
    return None


def pil_rgb(path: str | Path) -> Image.Image:
    """A colour image as a PIL 'RGB' image (grayscale replicated, an alpha channel dropped), as Adobe's script
    reads foregrounds and backgrounds (composition needs PIL's bicubic resize of the background)."""
    image = open_image(path)
    return image if image.mode == "RGB" else image.convert("RGB")


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an 8-bit colour image as H×W×3 uint8 RGB (grayscale is replicated; an alpha channel is dropped)."""
    return np.asarray(pil_rgb(path), dtype=np.uint8).copy()


def read_gray(path: str | Path, what: str = "alpha") -> np.ndarray:
    """Read a single-channel uint8 map (alpha or trimap) as H×W.

    An RGB(A) file whose colour channels are identical is accepted as grayscale (the alphamatting.com files need
    this); differing channels raise ImageError naming the file, as does everything `open_image` rejects.
    """
    path = Path(path)
    image = open_image(path)
    if image.mode in ("L", "1"):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    if image.mode == "LA":
        return np.asarray(image, dtype=np.uint8)[..., 0].copy()
    arr = np.asarray(image if image.mode in ("RGB", "RGBA") else image.convert("RGB"), dtype=np.uint8)
    colour = arr[..., :3]
    if not (np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2])):
        raise ImageError(f"{path}: {what} has {arr.shape[2]} channels that differ; expected a single channel")
    logger.debug("%s: %s stored with identical colour channels, read as grayscale", path, what)
    return colour[..., 0].copy()


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


def format_size(arr: np.ndarray) -> str:
    """The size of an H×W(×C) image array as width×height, the order every message uses (`56×40`)."""
    return f"{arr.shape[1]}×{arr.shape[0]}"


def check_same_size(named: dict[str, np.ndarray], context: str) -> None:
    """Raise ImageError when the sizes of the arrays differ, listing each name with its size as width×height."""
    sizes = {name: arr.shape[:2] for name, arr in named.items()}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{name} {format_size(arr)}" for name, arr in named.items())
        raise ImageError(f"{context}: sizes do not match (width×height: {listing})")
