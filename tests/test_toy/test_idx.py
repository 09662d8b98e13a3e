"""IDX reader: good files decode to what was written byte by byte; corrupt files fail naming file and problem."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from pipeline.toy.idx import IdxError, read_idx, read_idx_pair, write_idx


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Hand-made IDX bytes (independent of write_idx)."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()


@pytest.fixture()
def images() -> np.ndarray:
    return np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)


@pytest.mark.parametrize("gz", [False, True])
def test_reads_hand_made_files(tmp_path, images, gz):
    raw = _idx_bytes(images)
    path = tmp_path / ("x-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = read_idx(path, ndim=3)
    assert got.dtype == np.uint8 and got.shape == (3, 4, 5)
    np.testing.assert_array_equal(got, images)


def test_int32_is_big_endian(tmp_path):
    values = np.array([1, -2, 70000], dtype=np.int32)
    path = tmp_path / "v-ubyte"
    path.write_bytes(_idx_bytes(values, type_code=0x0C))
    np.testing.assert_array_equal(read_idx(path), values)


def test_write_then_read_round_trip(tmp_path, images):
    write_idx(tmp_path / "a-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "a-labels-idx1-ubyte.gz", np.array([7, 8, 9], np.uint8))
    got, labels = read_idx_pair(tmp_path / "a-images-idx3-ubyte.gz", tmp_path / "a-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(got, images)
    assert labels.tolist() == [7, 8, 9]
    assert gzip.decompress((tmp_path / "a-images-idx3-ubyte.gz").read_bytes()) == _idx_bytes(images)


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: b"\x01" + raw[1:], "bad magic number"),
    (lambda raw: raw[:2] + b"\x07" + raw[3:], "bad magic number"),
    (lambda raw: raw[:-7], r"truncated: declared shape \(3, 4, 5\) of uint8 needs 60 data bytes, found 53"),
    (lambda raw: raw + b"\x00\x00", "trailing bytes"),
    (lambda raw: raw[:9], "truncated header"),
    (lambda raw: raw[:2], "only 2 bytes"),
])
def test_corrupt_files_name_file_and_problem(tmp_path, images, mutate, message):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(mutate(_idx_bytes(images)))
    with pytest.raises(IdxError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip(tmp_path, images):
    path = tmp_path / "cut-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(images))[:-12])
    with pytest.raises(IdxError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_missing_file_and_wrong_ndim(tmp_path, images):
    with pytest.raises(IdxError, match="file not found"):
        read_idx(tmp_path / "nope-ubyte")
    path = tmp_path / "i-ubyte"
    path.write_bytes(_idx_bytes(images))
    with pytest.raises(IdxError, match="expected 1 dimensions"):
        read_idx(path, ndim=1)


def test_label_count_must_match_image_count(tmp_path, images):
    write_idx(tmp_path / "i-ubyte", images)
    write_idx(tmp_path / "l-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(IdxError, match="4 labels but .* holds 3 images"):
        read_idx_pair(tmp_path / "i-ubyte", tmp_path / "l-ubyte")
