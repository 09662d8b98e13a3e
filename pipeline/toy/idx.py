"""Read (and, for tests, write) IDX files: the format of MNIST and Fashion-MNIST (`*-ubyte`, optionally `.gz`).

Layout (big-endian): two zero bytes, one type byte (0x08 = uint8 ... 0x0E = float64), one byte with the number
of dimensions `ndim`, `ndim` uint32 sizes, then the data in C order. Every check names the file and the problem:
a wrong magic number, an unknown type code, fewer or more data bytes than the declared shape needs, a truncated
or corrupt gzip stream, and (for an image/label pair) label count != image count.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline.core.io import atomic_path

#: IDX type code -> numpy dtype (big-endian as stored).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


class IdxError(ValueError):
    """A missing, truncated or malformed IDX file (the message names the file and the problem)."""


def _read_bytes(path: Path) -> bytes:
    """Whole file content, gunzipped when the name ends in `.gz`."""
    if not path.is_file():
        raise IdxError(f"{path}: file not found")
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:  # gzip raises these for truncated / corrupt streams
        raise IdxError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc


def parse_idx(data: bytes, source: str | Path = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array of the declared shape and type."""
    if len(data) < 4:
        raise IdxError(f"{source}: only {len(data)} bytes; an IDX header needs at least 4")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or type_code not in IDX_DTYPES:
        raise IdxError(f"{source}: bad magic number 0x{data[:4].hex()} (expected 0x0000 followed by a type code "
                       f"in {[hex(c) for c in IDX_DTYPES]} and the number of dimensions)")
    if ndim == 0:
        raise IdxError(f"{source}: header declares 0 dimensions")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise IdxError(f"{source}: truncated header ({len(data)} bytes, {header_end} needed for {ndim} dims)")
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_end
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise IdxError(f"{source}: {problem}: declared shape {tuple(shape)} of {dtype.name} needs {expected} data "
                       f"bytes, found {actual}")
    array = np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (`.gz` or plain); `ndim`, when given, is checked against the header."""
    path = Path(path)
    array = parse_idx(_read_bytes(path), path)
    if ndim is not None and array.ndim != ndim:
        raise IdxError(f"{path}: expected {ndim} dimensions, header declares shape {array.shape}")
    return array


def read_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an image file (N×H×W) and its label file (N); the counts must agree.

    Returns:
        images (N×H×W, dtype as stored, uint8 for MNIST) and labels (N,).
    """
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(labels) != len(images):
        raise IdxError(f"{labels_path}: {len(labels)} labels but {images_path} holds {len(images)} images")
    return images, labels


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Atomically write `array` as IDX (gzipped when the name ends in `.gz`); used to make test files."""
    path = Path(path)
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise IdxError(f"{path}: dtype {array.dtype} has no IDX type code")
    header = struct.pack(">HBB", 0, codes[native], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(native.newbyteorder(">")).tobytes()
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return path
