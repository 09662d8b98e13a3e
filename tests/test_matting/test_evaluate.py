"""Evaluation sets, the runner (counting, continue_on_error, outputs) and the evaluate stage end to end."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from pipeline.matting.eval_sets import DatasetError, EvalSet, list_names, resolve_sets
from pipeline.matting.evaluate import EvaluationError, SetResult, evaluate_set, run_evaluation
from stages.evaluate import main as evaluate_main

QUARTER = 63  # a model answering 0.25 everywhere gives trunc(0.25 · 255) = 63 in the unknown region


def quarter_model(x: torch.Tensor) -> torch.Tensor:
    return torch.full_like(x[:, :1], 0.25)


def _train_summary(train_dir: Path, validated: bool = True) -> Path:
    """The `checkpoints` record a train stage leaves in summary.json (best only when the run validated)."""
    checkpoints = {"last": {"iter": 4, "selected_by": "last iteration"}}
    if validated:
        checkpoints["best"] = {"iter": 2, "selected_by": "lowest val/sad on val_source 'composed'"}
    train_dir.mkdir(parents=True, exist_ok=True)
    (train_dir / "summary.json").write_text(json.dumps({"checkpoints": checkpoints}))
    return train_dir


def _write_set(root: Path, names: list[str], trimap_dir: str = "trimap", size=(40, 56), with_list=True) -> dict:
    """A tiny set: random image, a blob alpha and its trimap; returns {name: (alpha, trimap)}."""
    rng = np.random.default_rng(len(names))
    out = {}
    for i, name in enumerate(names):
        h, w = size[0] + 3 * i, size[1] - 5 * i
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        alpha = np.zeros((h, w), np.uint8)
        alpha[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 255
        alpha = cv2.GaussianBlur(alpha, (9, 9), 3)
        trimap = np.where(alpha == 0, 0, np.where(alpha == 255, 255, 128)).astype(np.uint8)
        for folder, arr in (("image", image), ("alpha", alpha), (trimap_dir, trimap)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / folder / f"{name}.png"), arr)
        out[name] = (alpha, trimap)
    if with_list:
        (root / "list.txt").write_text("\n".join(names) + "\n")
    return out


def _expected_sad(alpha: np.ndarray, trimap: np.ndarray) -> float:
    unknown = trimap == 128
    return float(np.abs(alpha[unknown].astype(float) - QUARTER).sum() / 255 / 1000)


def test_list_names_from_list_or_folder(tmp_path):
    _write_set(tmp_path / "a", ["b", "a"])
    assert list_names(EvalSet("a", tmp_path / "a")) == ["b", "a"]
    _write_set(tmp_path / "c", ["z", "y"], with_list=False)
    assert list_names(EvalSet("c", tmp_path / "c")) == ["y", "z"]


def test_resolve_sets_layouts_and_errors(tmp_path):
    _write_set(tmp_path / "am", ["GT01"], trimap_dir="trimap1")
    sets = resolve_sets(tmp_path / "test", {"am": {"path": str(tmp_path / "am")},
                                            "am2": {"path": str(tmp_path / "am"), "trimap_dir": "trimap2"}})
    assert [(s.name, s.trimap_dir) for s in sets] == [("test", "trimap"), ("am", "trimap1"), ("am2", "trimap2")]
    with pytest.raises(DatasetError, match="evaluate.sets.bad.trimap_dir"):
        resolve_sets(tmp_path, {"bad": {"path": str(tmp_path / "am"), "trimap_dir": "tri"}})
    with pytest.raises(DatasetError, match="evaluate.sets.gone.path"):
        resolve_sets(tmp_path, {"gone": {"path": str(tmp_path / "nope")}})
    with pytest.raises(DatasetError, match="reserved"):
        resolve_sets(tmp_path, {"test": {"path": str(tmp_path / "am")}})
    with pytest.raises(DatasetError, match="evaluate.sets.short must be a mapping with 'path'"):
        resolve_sets(tmp_path, {"short": str(tmp_path / "am")})  # DVC's evalsets@<name> stage needs the mapping


def test_evaluate_set_scores_match_hand_computation(tmp_path):
    data = _write_set(tmp_path / "set", ["a", "b"])
    result = evaluate_set(quarter_model, EvalSet("set", tmp_path / "set"), tmp_path / "pred", progress=False)
    assert [r.name for r in result.images] == ["a", "b"] and not result.failures
    for row in result.images:
        alpha, trimap = data[row.name]
        assert row.sad == pytest.approx(_expected_sad(alpha, trimap), rel=1e-9)
        saved = cv2.imread(str(tmp_path / "pred" / f"{row.name}.png"), cv2.IMREAD_UNCHANGED)
        assert saved.shape == alpha.shape
        assert (saved[trimap == 128] == QUARTER).all() and (saved[trimap == 255] == 255).all()
        assert row.peak_mem_mb >= 0 and row.seconds >= 0


def test_trimap_with_127_stops_with_the_file_name(tmp_path):
    _write_set(tmp_path / "set", ["ok", "bad"])
    trimap = cv2.imread(str(tmp_path / "set" / "trimap" / "bad.png"), cv2.IMREAD_UNCHANGED)
    trimap[trimap == 128] = 127
    cv2.imwrite(str(tmp_path / "set" / "trimap" / "bad.png"), trimap)
    with pytest.raises(EvaluationError, match=r"image 'bad'.*trimap/bad\.png.*127"):
        evaluate_set(quarter_model, EvalSet("set", tmp_path / "set"), None, progress=False)


def test_size_mismatch_stops_with_the_names(tmp_path):
    _write_set(tmp_path / "set", ["a"])
    cv2.imwrite(str(tmp_path / "set" / "alpha" / "a.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(EvaluationError, match=r"image 'a'.*sizes do not match"):
        evaluate_set(quarter_model, EvalSet("set", tmp_path / "set"), None, progress=False)


def test_missing_image_fails_loudly_before_inference(tmp_path):
    _write_set(tmp_path / "set", ["a", "b", "c"])
    (tmp_path / "set" / "image" / "b.png").unlink()
    calls = []
    with pytest.raises(EvaluationError, match=r"1 of the files of 3 listed images are missing: .*image/b\.\{png,jpg"):
        evaluate_set(lambda x: calls.append(1) or quarter_model(x), EvalSet("set", tmp_path / "set"), None,
                     progress=False)
    assert not calls


def test_continue_on_error_counts_and_lists_failures(tmp_path):
    _write_set(tmp_path / "set", ["a", "b", "c", "d"])
    (tmp_path / "set" / "image" / "b.png").unlink()

    def flaky(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] == 64:  # only image "d" (49 rows) pads to 64 rows; a, b, c pad to 48
            raise RuntimeError("CUDA out of memory (simulated)")
        return quarter_model(x)

    result = evaluate_set(flaky, EvalSet("set", tmp_path / "set"), None, continue_on_error=True, progress=False)
    assert [r.name for r in result.images] == ["a", "c"]
    assert [f["name"] for f in result.failures] == ["b", "d"]
    assert "out of memory" in result.failures[1]["error"]
    summary = result.summary()
    assert (summary["n_images"], summary["n_failed"], summary["n_listed"]) == (2, 2, 4)


def test_count_check_raises_when_numbers_do_not_add_up():
    with pytest.raises(EvaluationError, match="0 evaluated \\+ 0 failed != 2 listed"):
        SetResult("x", n_listed=2).check_count()


def test_run_evaluation_writes_csv_metrics_and_predictions(tmp_path):
    data = _write_set(tmp_path / "test", ["a", "b", "c"])
    extra = _write_set(tmp_path / "am", ["GT01"], trimap_dir="trimap1", with_list=False)
    sets = resolve_sets(tmp_path / "test", {"am": {"path": str(tmp_path / "am")}})
    doc = run_evaluation(quarter_model, sets, tmp_path / "out", progress=False, variant="stand-in")
    rows = list(csv.DictReader((tmp_path / "out" / "per_image.csv").open()))
    assert list(rows[0]) == ["set", "name", "sad", "mse", "grad", "conn", "peak_mem_mb", "seconds"]
    assert [(r["set"], r["name"]) for r in rows] == [("test", "a"), ("test", "b"), ("test", "c"), ("am", "GT01")]
    expected = np.mean([_expected_sad(*data[n]) for n in "abc"])
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["sad"] == pytest.approx(expected, rel=1e-9) and doc["sad"] == saved["sad"]
    # metrics.json (the DVC metric) holds only the four means per set: flat for the test split, nested for others
    flat = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert flat == {**{m: saved["sets"]["test"][m]["mean"] for m in ("sad", "mse", "grad", "conn")},
                    "am": {m: saved["sets"]["am"][m]["mean"] for m in ("sad", "mse", "grad", "conn")}}
    assert saved["n_images"] == 3 and saved["n_failed"] == 0 and saved["variant"] == "stand-in"
    assert saved["sets"]["am"]["sad"]["mean"] == pytest.approx(_expected_sad(*extra["GT01"]), rel=1e-9)
    assert saved["sets"]["test"]["sad"]["std"] == pytest.approx(np.std([_expected_sad(*data[n]) for n in "abc"]))
    assert sorted(p.name for p in (tmp_path / "out" / "pred" / "test").iterdir()) == ["a.png", "b.png", "c.png"]
    assert (tmp_path / "out" / "pred" / "am" / "GT01.png").is_file()


def test_evaluate_stage_end_to_end(tmp_path):
    _write_set(tmp_path / "data" / "test", ["a", "b"])
    params = {"base": {"seed": 6, "profile": "smoke", "device": "cpu"}, "train": {"seeds": [0, 1]},
              "evaluate": {"sets": {}, "tile": 32, "continue_on_error": False}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    loaded = []

    def load_stand_in(train_dir: Path, which: str, device: str):
        loaded.append((train_dir, which, device))
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(4, 1, 3, padding=1), torch.nn.Sigmoid()).eval()

    for seed in (0, 1):
        _train_summary(tmp_path / "train" / "toy" / f"seed{seed}")
    doc = evaluate_main(["toy", "--params", str(tmp_path / "params.yaml"), "--model", str(tmp_path / "train" / "toy"),
                         "--data", str(tmp_path / "data"), "--out", str(tmp_path / "eval" / "toy"), "--no-progress"],
                        load_model=load_stand_in)
    assert loaded == [(tmp_path / "train" / "toy" / f"seed{s}", "best", "cpu") for s in (0, 1)]
    out = tmp_path / "eval" / "toy"
    assert {p.name for p in out.iterdir()} == {"metrics.json", "summary.json", "seeds", "run.json"}
    per_seed = [json.loads((out / "seeds" / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
    for seed, one in enumerate(per_seed):
        assert {p.name for p in (out / "seeds" / f"seed{seed}").iterdir()} == {
            "per_image.csv", "metrics.json", "summary.json", "pred"}
        assert one["seed"] == seed and one["n_images"] == 2 and one["tile"] == 32 and one["overlap"] == 16
        assert one["checkpoint"] == {"which": "best", "iter": 2, "requested": "auto", "val": {},
                                     "selected_by": "best at iteration 2 (lowest val/sad on val_source 'composed')"}
    # the summary over seeds: means and std over the seeds' test means, per-seed values, paired by seed
    assert doc["seeds"] == [0, 1] and doc["n_images"] == 2
    sads = [one["sets"]["test"]["sad"]["mean"] for one in per_seed]
    assert doc["sets"]["test"]["sad"]["values"] == sads and doc["sad"] == pytest.approx(np.mean(sads))
    assert doc["sets"]["test"]["sad"]["std"] == pytest.approx(np.std(sads, ddof=1))
    assert doc["per_seed"]["1"]["sad"] == sads[1] and doc["checkpoint"]["iters"] == [2, 2]
    assert json.loads((out / "metrics.json").read_text())["sad"] == pytest.approx(np.mean(sads))
    run = json.loads((out / "run.json").read_text())
    assert run["stage"] == "evaluate" and run["params"]["evaluate"]["variant"] == "toy"
    assert run["params"]["evaluate"]["seeds"] == [0, 1]
    assert not [p for p in (tmp_path / "eval").iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_tiled_check_reports_the_effect_of_tiling(tmp_path):
    """With a per-pixel model tiling changes nothing; with a model that sees the whole image it does."""
    _write_set(tmp_path / "data" / "test", ["a", "b"], size=(48, 64))
    params = {"base": {"seed": 6, "profile": "smoke", "device": "cpu"}, "train": {"seeds": [0]},
              "evaluate": {"sets": {}, "tile": None, "tile_check": 32}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def global_mean_model(x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].mean(dim=(2, 3), keepdim=True).sigmoid().expand_as(x[:, :1])

    for name, model, changes in (("pixel", quarter_model, False), ("global", global_mean_model, True)):
        _train_summary(tmp_path / name / "seed0", validated=False)
        doc = evaluate_main([name, "--params", str(tmp_path / "params.yaml"), "--model", str(tmp_path / name),
                             "--data", str(tmp_path / "data"), "--out", str(tmp_path / "eval" / name),
                             "--no-progress"],
                            load_model=lambda *_, m=model: m)
        one = json.loads((tmp_path / "eval" / name / "seeds" / "seed0" / "summary.json").read_text())
        check = one["tiled_check"]
        assert check == doc["tiled_check"] and check["tile"] == 32 and check["n_images"] == 2
        assert check["sad"]["whole"] == pytest.approx(doc["sets"]["test"]["sad"]["mean"])
        assert (abs(check["sad"]["delta"]) > 1e-6) == changes, check
        assert (one["checkpoint"]["which"], one["checkpoint"]["iter"]) == ("last", 4)  # no validation: auto -> last


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    """Under DVC with a log file, tqdm's carriage returns made one unreadable console line per set."""
    _write_set(tmp_path / "set", ["a", "b"])
    evaluate_set(quarter_model, EvalSet("set", tmp_path / "set"), None, progress=True)
    assert "evaluate set" not in capsys.readouterr().err
