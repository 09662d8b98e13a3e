"""Same params, same digits, by construction: the real A2U matting network at the `cpu` profile's shapes (its
config: width, crop, batch, optimiser), trained for 60 iterations twice in separate processes through the train
stage, once alone and once beside a CPU-burning process, ends with bitwise-identical weights.

What could break it: MKL's dynamic threading or kernel choice under load (`pipeline.core.mathenv` pins them
before torch loads), a time- or load-dependent code path, an unseeded draw.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from pipeline.matting.checkpoint import read_checkpoint
from tests.test_matting.test_data_matting import make_composed_data

REPO = Path(__file__).resolve().parents[2]
ITERS = 60


def _train(params: Path, data: Path, root: Path) -> Path:
    out = root / "out"
    subprocess.run([sys.executable, str(REPO / "stages" / "train.py"), "a2u", "--seed", "0", "--params", str(params),
                    "--data", str(data), "--configs", str(REPO / "configs" / "matting"), "--out", str(out),
                    "--work", str(root / "work")], cwd=REPO, check=True, capture_output=True, timeout=900)
    return out


def test_a2u_cpu_profile_training_repeats_bitwise_beside_a_busy_process(tmp_path: Path) -> None:
    data = make_composed_data(tmp_path / "composed")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base": {"seed": 6, "profile": "cpu", "device": "cpu"},
                                      "train": {"variants": ["a2u"], "seeds": [0], "iters": ITERS,
                                                "val_interval": ITERS, "num_workers": 0}}))
    alone = _train(params, data, tmp_path / "alone")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = _train(params, data, tmp_path / "loaded")
    finally:
        hog.kill()
        hog.wait()
    summary = json.loads((alone / "summary.json").read_text())
    assert summary["recipe"]["upsampler"] == "a2u" and summary["last_iter"] == ITERS and summary["profile"] == "cpu"
    run = json.loads((loaded / "run.json").read_text())
    assert run["machine"]["math_env"]["MKL_CBWR"] == "COMPATIBLE"  # the pinning reached the training process
    first, second = (read_checkpoint(d / "last.pth")["state_dict"] for d in (alone, loaded))
    assert first.keys() == second.keys()
    differ = [k for k in first if not torch.equal(first[k], second[k])]
    assert not differ, f"{len(differ)} of {len(first)} tensors differ, e.g. {differ[:3]}"
