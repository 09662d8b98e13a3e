"""Bad inputs a careful user produces, each with the error that names it (or, where valid, the same answer from
every reader): composition, the evaluation-set validator and evaluation share one reading path."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from pipeline.compose.composed_set import build_composed_set
from pipeline.compose.evalset import validate_eval_set, write_eval_manifest
from pipeline.core.io import ImageError, image_files, read_alpha, read_rgb, read_trimap
from pipeline.core.params import ParamsError, load_stage
from pipeline.matting.eval_sets import DatasetError, EvalSet, check_manifest, list_names, resolve_sets
from pipeline.matting.evaluate import EvaluationError, evaluate_set
from pipeline.matting.params import EvaluateParams, TrainParams
from tests.test_compose.fake_adobe import compose_params

REPO = Path(__file__).resolve().parents[2]


def quarter_model(x: torch.Tensor) -> torch.Tensor:
    return torch.full_like(x[:, :1], 0.25)


def _sample(rng: np.random.Generator, h: int = 20, w: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    alpha = np.zeros((h, w), np.uint8)
    alpha[5:15, 6:18] = 255
    alpha[4, 6:18] = 100
    trimap = np.where(alpha == 0, 0, np.where(alpha == 255, 255, 128)).astype(np.uint8)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), alpha, trimap


def _eval_set(root: Path, names: dict[str, dict[str, str]], trimap_dir: str = "trimap") -> Path:
    """A set whose files are named `<name><ext>` with ext per kind from `names[name]` (default .png)."""
    rng = np.random.default_rng(0)
    for name, exts in names.items():
        image, alpha, trimap = _sample(rng)
        for kind, folder, array in (("image", "image", image), ("alpha", "alpha", alpha),
                                    ("trimap", trimap_dir, trimap)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(".png" if exts.get(kind, ".png").lower() in (".png",) else
                                   exts.get(kind, ".png").lower(), array)
            (root / folder / f"{name}{exts.get(kind, '.png')}").write_bytes(buf.tobytes())
    return root


# ------------------------------------------------------------------------------ validator == evaluation
@pytest.mark.parametrize("names", [
    {"a": {"image": ".PNG"}, "b": {}},                     # upper-case extension
    {"a": {"alpha": ".jpg", "image": ".JPG"}, "b": {}},    # an alpha saved as JPEG (Adobe ships some)
    {" a": {}, "b": {}},                                   # a name with a leading space
])
def test_validator_and_evaluation_accept_the_same_files(tmp_path: Path, names: dict) -> None:
    root = _eval_set(tmp_path / "set", names)
    validated = validate_eval_set(root)
    eval_set = EvalSet("set", root)
    assert validated.names == list_names(eval_set) == sorted(names)
    result = evaluate_set(quarter_model, eval_set, tmp_path / "pred", progress=False)
    assert [r.name for r in result.images] == sorted(names) and not result.failures
    assert (tmp_path / "pred" / f"{sorted(names)[0]}.png").is_file()


def test_list_file_names_are_used_as_written(tmp_path: Path) -> None:
    root = _eval_set(tmp_path / "set", {" a": {}, "b": {}})
    (root / "list.txt").write_text(" a\nb\n\n")
    assert list_names(EvalSet("set", root)) == [" a", "b"] == validate_eval_set(root).names
    (root / "list.txt").write_text("a\nb\n")  # "a" is not " a": never guessed
    with pytest.raises(EvaluationError, match=r"image/a\.\{png"):
        evaluate_set(quarter_model, EvalSet("set", root), None, progress=False)
    with pytest.raises(FileNotFoundError, match=r"list\.txt: no image .*image/a\.\{png"):
        validate_eval_set(root)


def test_two_files_for_one_name_are_ambiguous_everywhere(tmp_path: Path) -> None:
    root = _eval_set(tmp_path / "set", {"a": {}})
    (root / "alpha" / "a.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((20, 24), np.uint8))[1].tobytes())
    with pytest.raises(ImageError, match=r"several files for the name 'a'.*a\.jpg"):
        validate_eval_set(root)
    with pytest.raises(ImageError, match=r"several files for the name 'a'"):
        evaluate_set(quarter_model, EvalSet("set", root), None, progress=False)


def test_hidden_files_are_not_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _eval_set(tmp_path / "set", {"a": {}})
    (root / "image" / "._a.png").write_bytes(b"AppleDouble")  # macOS resource fork next to the real file
    assert list_names(EvalSet("set", root)) == ["a"] == validate_eval_set(root).names
    assert [p.name for p in image_files(root / "image")] == ["a.png"]
    assert "._a.png" in caplog.text  # skipped, but not silently


# ------------------------------------------------------------------------------ one decoder, one bit depth
def _write16(path: Path, channels: int) -> None:
    shape = (20, 24, channels) if channels > 1 else (20, 24)
    cv2.imwrite(str(path), np.full(shape, 40000, np.uint16))


@pytest.mark.parametrize("reader, channels", [(read_rgb, 3), (read_alpha, 1), (read_trimap, 1), (read_rgb, 1)])
def test_sixteen_bit_files_are_rejected_by_every_reader(tmp_path: Path, reader, channels: int) -> None:
    _write16(tmp_path / "x16.png", channels)
    with pytest.raises(ImageError, match=r"x16\.png: .*16.*only 8-bit images are read"):
        reader(tmp_path / "x16.png")


@pytest.mark.parametrize("content, words", [(b"", "empty file"), (b"\x89PNG\r\n\x1a\nxx", "unreadable"),
                                            (None, "truncated")])
def test_broken_image_files_name_the_file(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "bad.png"
    if content is None:
        data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))[1]
        content = data.tobytes()[: data.size // 2]
    path.write_bytes(content)
    with pytest.raises(ImageError, match=rf"bad\.png: .*{words}"):
        read_rgb(path)


def _folder_source(tmp_path: Path, names: list[str]) -> dict:
    rng = np.random.default_rng(1)
    for name in names:
        image, alpha, trimap = _sample(rng, 12, 10)
        for folder, array in (("fg", image), ("alpha", alpha), ("trimap", trimap)):
            (tmp_path / "set" / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "set" / folder / f"{name}.png"), array)
    (tmp_path / "bgs").mkdir()
    for i in range(2):
        cv2.imwrite(str(tmp_path / "bgs" / f"bg{i}.jpg"), np.full((16, 16, 3), 40 * i, np.uint8))
    return {"source": "folder", "seed": 1, "n_val": 0, "n_test": len(names) - 1,
            "folder": {"root": str(tmp_path / "set"), "bg_dir": str(tmp_path / "bgs")}}


def test_composed_names_with_a_leading_space_are_found_by_evaluation_and_training(tmp_path: Path) -> None:
    from pipeline.matting.dataset import read_list

    names = [" lead", "b", "c"]
    cfg = _folder_source(tmp_path, names)
    build_composed_set(*compose_params(cfg), tmp_path / "out", workers=1)
    out = tmp_path / "out"
    composed = list_names(EvalSet("test", out / "test")) + read_list(out / "train" / "fg_list.txt")
    assert {n.rsplit("_", 1)[0] if n not in names else n for n in composed} == set(names)
    result = evaluate_set(quarter_model, EvalSet("test", out / "test"), None, progress=False)
    assert len(result.images) == 2 and not result.failures
    for name in read_list(out / "train" / "fg_list.txt"):
        assert (out / "train" / "fg" / f"{name}.png").is_file()


def test_sixteen_bit_foreground_stops_composition(tmp_path: Path) -> None:
    cfg = _folder_source(tmp_path, ["a", "b", "c"])
    _write16(tmp_path / "set" / "fg" / "b.png", 3)
    with pytest.raises(ImageError, match=r"fg/b\.png: 16 bits per channel"):
        build_composed_set(*compose_params(cfg), tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_a_train_only_trimap_with_127_is_checked(tmp_path: Path) -> None:
    cfg = _folder_source(tmp_path, ["a", "b", "c"])
    cfg["n_test"] = 0  # every foreground is a training item: its trimap is not written, but still read
    trimap = read_trimap(tmp_path / "set" / "trimap" / "c.png")
    trimap[trimap == 128] = 127
    cv2.imwrite(str(tmp_path / "set" / "trimap" / "c.png"), trimap)
    with pytest.raises(ImageError, match=r"trimap/c\.png: trimap holds values \[127\].*use 128"):
        build_composed_set(*compose_params(cfg), tmp_path / "out", workers=1)


# ------------------------------------------------------------------------------ settings
def _params(tmp_path: Path, section: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"base": {"seed": 1, "profile": "smoke"}, **section}))
    return path


def test_variants_as_a_string_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"train\.variants must be a list, got 'a2u'"):
        load_stage(_params(tmp_path, {"train": {"variants": "a2u"}}), "train", TrainParams)


def test_variants_as_a_string_is_named_before_dvc_runs(tmp_path: Path) -> None:
    """DVC expands train@/evaluate@ before any stage runs and fails without naming the key; `make repro` checks
    params.yaml first (`pipeline.params_check`), which names it."""
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["variants"] = "a2u"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, capture_output=True)
    listed = subprocess.run([*dvc, "stage", "list"], cwd=tmp_path, capture_output=True, text=True)
    assert listed.returncode != 0
    checked = subprocess.run([sys.executable, "-m", "pipeline.params_check", str(tmp_path / "params.yaml")],
                             cwd=REPO, capture_output=True, text=True)
    assert checked.returncode == 2 and "train.variants must be a list" in checked.stderr, checked.stderr


def test_eval_set_shorthand_and_unknown_keys_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"evaluate\.sets\.am.*mapping"):
        load_stage(_params(tmp_path, {"evaluate": {"sets": {"am": "/data/am"}}}), "evaluate", EvaluateParams)
    with pytest.raises(DatasetError, match=r"evaluate\.sets\.am must be a mapping with 'path'"):
        resolve_sets(tmp_path, {"am": str(tmp_path)})


# ------------------------------------------------------------------------------ changed evaluation data
def test_an_evaluation_set_changed_after_its_manifest_is_refused(tmp_path: Path) -> None:
    root = _eval_set(tmp_path / "am", {"GT01": {}, "GT02": {}}, trimap_dir="trimap1")
    write_eval_manifest(root, tmp_path / "evalsets" / "am")
    (eval_set,) = resolve_sets(tmp_path / "unused", {"am": {"path": str(root)}})[1:]
    assert check_manifest(eval_set, tmp_path / "evalsets" / "am") == 6
    alpha = read_alpha(root / "alpha" / "GT02.png")
    alpha[0, 0] = 255 - alpha[0, 0]
    cv2.imwrite(str(root / "alpha" / "GT02.png"), alpha)
    with pytest.raises(DatasetError, match=r"alpha/GT02\.png changed after .*manifest\.jsonl"):
        check_manifest(eval_set, tmp_path / "evalsets" / "am")
    with pytest.raises(DatasetError, match=r"manifest .*nowhere.*not found.*evalsets@am"):
        check_manifest(eval_set, tmp_path / "nowhere")
    summary = json.loads((tmp_path / "evalsets" / "am" / "summary.json").read_text())
    assert summary["root"] == str(root)  # as given (no machine-specific resolution)


def test_an_evaluation_set_is_a_dependency_of_evaluation_in_dvc(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`evalsets@<name>` depends on the set's folder and `evaluate@<v>` on its manifest (DVC's own graph)."""
    from dvc.repo import Repo

    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"]["sets"] = {"am": {"path": str(tmp_path / "am"), "trimap_dir": "trimap1"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)  # stage addresses are relative to the working directory
    with Repo(str(tmp_path)) as repo:
        stages = {s.addressing: s for s in repo.index.stages}
        evalset = stages["evalsets@am"]
        assert str(tmp_path / "am") in [str(d.fs_path) for d in evalset.deps]
        upstream = {s.addressing for s in repo.index.graph.successors(stages["evaluate@a2u"])}
        assert {"evalsets@am", "train@a2u-0", "train@a2u-1", "train@a2u-2"} <= upstream
