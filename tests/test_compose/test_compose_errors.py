"""Bad inputs raise an error naming the file and the problem, and leave nothing in the output folder."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.compose.composed_set import build_composed_set
from pipeline.core.io import ImageError
from tests.test_compose import fake_adobe as fa

TEST_SET = Path("Test_set") / "Adobe-licensed images"


def _break_alpha_size(paths: dict) -> Path:
    target = paths["root"] / TEST_SET / "alpha" / "t1.png"
    cv2.imwrite(str(target), np.zeros((fa.FG_H + 1, fa.FG_W), np.uint8))
    return target


def _break_list(paths: dict) -> Path:
    names = paths["root"] / "Test_set" / "test_fg_names.txt"
    names.write_text("t1.png\nmissing.png\n")
    return names


def _break_alpha_channels(paths: dict) -> Path:
    target = paths["root"] / TEST_SET / "alpha" / "t2.png"
    rgb = np.zeros((fa.FG_H, fa.FG_W, 3), np.uint8)
    rgb[..., 1] = 200
    cv2.imwrite(str(target), rgb)
    return target


def _break_alpha_depth(paths: dict) -> Path:
    target = paths["root"] / TEST_SET / "alpha" / "t1.png"
    cv2.imwrite(str(target), np.full((fa.FG_H, fa.FG_W), 40000, np.uint16))
    return target


def _break_trimap_values(paths: dict) -> Path:
    target = paths["root"] / TEST_SET / "trimaps" / "t2_1.png"
    trimap = fa.official_trimap("t2_1")
    trimap[trimap == 128] = 127
    cv2.imwrite(str(target), trimap)
    return target


def _break_fg_bytes(paths: dict) -> Path:
    target = paths["root"] / TEST_SET / "fg" / "t2.png"
    target.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return target


def _remove_background(paths: dict) -> Path:
    target = paths["voc"] / "2008_000003.png"
    target.unlink()
    return paths["root"] / "Test_set" / "test_bg_names.txt"


@pytest.mark.parametrize("breaker, error, words", [
    (_break_alpha_size, ImageError, "sizes do not match"),
    (_break_list, FileNotFoundError, "missing.png"),
    (_break_alpha_channels, ImageError, "channels that differ"),
    (_break_alpha_depth, ImageError, "8-bit"),
    (_break_trimap_values, ImageError, "127"),
    (_break_fg_bytes, ImageError, "unreadable"),
    (_remove_background, FileNotFoundError, "2008_000003.png"),
])
def test_bad_input_names_the_file(tmp_path: Path, breaker, error: type, words: str) -> None:
    paths = fa.make_fake_adobe(tmp_path)
    culprit = breaker(paths)
    out = tmp_path / "composed"
    with pytest.raises(error) as info:
        build_composed_set(*fa.compose_params(fa.comp1k_cfg(paths)), out, workers=1)
    message = str(info.value)
    assert culprit.name in message and words in message, message
    assert not out.exists(), "a failed run must not leave an output folder"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".composed")], "no temporary leftovers"


def test_failure_keeps_previous_output(tmp_path: Path) -> None:
    paths = fa.make_fake_adobe(tmp_path)
    out = tmp_path / "composed"
    first = build_composed_set(*fa.compose_params(fa.comp1k_cfg(paths)), out, workers=1)
    _break_fg_bytes(paths)
    with pytest.raises(ImageError):
        build_composed_set(*fa.compose_params(fa.comp1k_cfg(paths)), out, workers=1)
    assert (out / "summary.json").is_file() and first["set_hash"] in (out / "summary.json").read_text()


def test_unknown_source_and_missing_path_name_the_key(tmp_path: Path) -> None:
    from pipeline.core.params import ParamsError

    with pytest.raises(ParamsError, match="compose.source"):
        build_composed_set(*fa.compose_params({"source": "coco"}), tmp_path / "x")
    with pytest.raises(ParamsError, match="compose.comp1k.voc_dir"):
        build_composed_set(*fa.compose_params({"source": "comp1k", "n_val": 1, "comp1k": {"root": "r", "coco_dir": "c"}}),
                           tmp_path / "x")
