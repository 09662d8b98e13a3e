"""Evaluation-only sets: the alphamatting.com low-res training set validates; a broken copy names the file."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.compose.evalset import validate_eval_set, write_eval_manifest
from pipeline.core.manifest import read_manifest
from pipeline.core.io import ImageError, read_trimap
from tests.conftest import REPO_ROOT, shared_path


def test_alphamatting_lowres_validates(tmp_path: Path) -> None:
    root = shared_path("data", "alphamatting-lowres")
    summary = write_eval_manifest(root, tmp_path / "am")
    assert summary["names"] == [f"GT{i:02d}" for i in range(1, 14)]
    assert summary["trimap_dirs"] == ["trimap1", "trimap2"] and summary["n_files"] == 13 * 4
    records = read_manifest(tmp_path / "am" / "manifest.jsonl")
    assert {r["kind"] for r in records} == {"image", "alpha", "trimap1", "trimap2"}
    assert any(r["path"] == "trimap2/GT07.png" for r in records)


def test_stage_cli_eval_only(tmp_path: Path) -> None:
    root = shared_path("data", "alphamatting-lowres")
    sys.path.insert(0, str(REPO_ROOT))
    from stages.compose import main

    assert main(["--eval-only", str(root), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "manifest.jsonl").is_file() and (tmp_path / "cli" / "summary.json").is_file()


def _small_copy(tmp_path: Path) -> Path:
    src = shared_path("data", "alphamatting-lowres")
    dst = tmp_path / "am"
    for folder in ("image", "alpha", "trimap1", "trimap2"):
        (dst / folder).mkdir(parents=True)
        for name in ("GT01.png", "GT02.png"):
            shutil.copy(src / folder / name, dst / folder / name)
    return dst


def test_broken_copy_names_the_file(tmp_path: Path) -> None:
    root = _small_copy(tmp_path)
    assert validate_eval_set(root).names == ["GT01", "GT02"]
    trimap = read_trimap(root / "trimap2" / "GT02.png")
    trimap[trimap == 128] = 127
    cv2.imwrite(str(root / "trimap2" / "GT02.png"), trimap)
    with pytest.raises(ImageError, match=r"trimap2/GT02.png.*127"):
        validate_eval_set(root)
    (root / "trimap2" / "GT02.png").unlink()
    with pytest.raises(FileNotFoundError, match="GT02"):
        write_eval_manifest(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_size_mismatch_in_eval_set(tmp_path: Path) -> None:
    root = _small_copy(tmp_path)
    alpha = cv2.imread(str(root / "alpha" / "GT01.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(root / "alpha" / "GT01.png"), np.ascontiguousarray(alpha[:-2]))
    with pytest.raises(ImageError, match="GT01.*sizes do not match"):
        validate_eval_set(root)
