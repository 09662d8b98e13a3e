"""Matting training/validation datasets and transforms on tiny generated data with the compose stage's layout.

Also provides `make_composed_data` and the tiny stand-in network `TinyStandInMattingNet` used by the training
tests (kept here so one module registers it once).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from models.registry import MODELS
from pipeline.matting.dataset import MattingValDataset, OnlineCompositionDataset
from pipeline.matting.transforms import CropAroundUnknown, RandomAffineForeground
from pipeline.core.manifest import SUMMARY_NAME, file_record, set_hash
from pipeline.core.io import write_json, write_image

TRAIN_PIPELINE = [
    dict(type="LoadCompositionSample"), dict(type="MixSecondForeground", prob=0.5),
    dict(type="RandomResizeForeground", prob=0.25, size=80),
    dict(type="RandomAffineForeground"), dict(type="RandomFlipForeground"),
    dict(type="GenerateRandomTrimap", kernel_range=(1, 9)), dict(type="CropAroundUnknown", crop=32),
    dict(type="HSVJitterForeground"), dict(type="CompositeImage"), dict(type="PackMattingInputs"),
]
UNKNOWN_INPUT = torch.tensor(128 / 255, dtype=torch.float32).item()
VAL_PIPELINE = [dict(type="LoadMattingValSample"), dict(type="PackMattingInputs", with_targets=False)]


@MODELS.register_module()
class TinyStandInMattingNet(nn.Module):
    """A few-hundred-parameter network with BatchNorm and dropout: N×4×H×W -> N×1×H×W (H, W even)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(4, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Conv2d(width + 4, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.dropout(self.down(x))
        up = nn.functional.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([up, x], dim=1))


def _soft_disc(size: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: size[0], : size[1]]
    dist = np.hypot(yy - centre[0], xx - centre[1])
    return (np.clip((radius - dist) / 4.0 + 0.5, 0, 1) * 255).astype(np.uint8)


def make_composed_data(root: Path, seed: int = 0) -> Path:
    """Write a tiny `data/composed`-style tree: 3 train fgs (48×48), 2 bgs (40×56), 2 val images (40×56)."""
    rng = np.random.default_rng(seed)
    train, val = root / "train", root / "val"
    names = [f"fg{i}" for i in range(3)]
    for i, name in enumerate(names):
        write_image(train / "fg" / f"{name}.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
        write_image(train / "alpha" / f"{name}.png", _soft_disc((48, 48), (22 + i, 25 - i), 12 + i))
    (train / "fg_list.txt").write_text("\n".join(names) + "\n")
    bgs = []
    for i in range(2):
        write_image(train / "bg" / f"bg{i}.png", rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
        bgs.append(f"bg/bg{i}.png")
    (train / "bg_list.txt").write_text("\n".join(bgs) + "\n")
    val_names = ["v0", "v1"]
    for i, name in enumerate(val_names):
        alpha = _soft_disc((40, 56), (20, 28), 10 + 2 * i)
        fg = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        bg = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        a = alpha[..., None] / 255.0
        image = np.rint(fg * a + bg * (1 - a)).astype(np.uint8)
        trimap = np.full(alpha.shape, 128, np.uint8)
        trimap[cv2.erode((alpha == 255).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 255
        trimap[cv2.erode((alpha == 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0
        for kind, array in (("image", image), ("alpha", alpha), ("trimap", trimap), ("fg", fg), ("bg", bg)):
            write_image(val / kind / f"{name}.png", array)
    (val / "list.txt").write_text("\n".join(val_names) + "\n")
    records = [file_record(root, path, path.relative_to(root).parts[0], "file", [])
               for path in sorted(root.rglob("*")) if path.is_file()]
    write_json(root / SUMMARY_NAME, {"source": "test", "set_hash": set_hash(records)})
    return root


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_composed_data(tmp_path_factory.mktemp("composed"))


def test_training_sample_shapes_ranges_and_composition(composed: Path) -> None:
    dataset = OnlineCompositionDataset(data_root=str(composed / "train"), pipeline=TRAIN_PIPELINE)
    assert len(dataset) == 3  # max(n_fg=3, n_bg=2)
    np.random.seed(1)
    for idx in range(4):
        sample = dataset[idx]
        inputs, targets = sample["inputs"], sample["data_samples"]
        assert inputs.shape == (4, 32, 32) and inputs.dtype == torch.float32
        assert set(torch.unique(inputs[3]).tolist()) <= {0.0, UNKNOWN_INPUT, 1.0}
        for key, channels in (("alpha", 1), ("unknown", 1), ("fg", 3), ("bg", 3), ("image", 3)):
            assert targets[key].shape == (channels, 32, 32), key
            assert 0.0 <= float(targets[key].min()) and float(targets[key].max()) <= 1.0, key
        assert set(torch.unique(targets["unknown"]).tolist()) <= {0.0, 1.0}
        assert targets["unknown"].sum() > 0
        assert torch.equal(targets["unknown"][0], (inputs[3] == UNKNOWN_INPUT).float())
        alpha = targets["alpha"]
        expected = (targets["fg"] * alpha + targets["bg"] * (1 - alpha)).clamp(0, 1)
        assert torch.allclose(targets["image"], expected, atol=1e-6)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        assert torch.allclose(inputs[:3] * std + mean, targets["image"], atol=1e-5)


def test_training_samples_replay_with_the_same_seed(composed: Path) -> None:
    dataset = OnlineCompositionDataset(data_root=str(composed / "train"), pipeline=TRAIN_PIPELINE)
    np.random.seed(3)
    first = [dataset[i]["inputs"] for i in range(3)]
    np.random.seed(3)
    again = [dataset[i]["inputs"] for i in range(3)]
    np.random.seed(4)
    other = [dataset[i]["inputs"] for i in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_validation_dataset_full_size_uint8_targets(composed: Path) -> None:
    dataset = MattingValDataset(data_root=str(composed / "val"), pipeline=VAL_PIPELINE)
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample["inputs"].shape == (4, 40, 56)
    samples = sample["data_samples"]
    assert samples["name"] == "v1"
    assert samples["alpha"].dtype == torch.uint8 and samples["alpha"].shape == (1, 40, 56)
    assert set(torch.unique(samples["trimap"]).tolist()) <= {0, 128, 255}
    image = cv2.imread(str(composed / "val" / "image" / "v1.png"))[..., ::-1].copy()
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    restored = (sample["inputs"][:3] * std + mean) * 255
    assert torch.allclose(restored, torch.from_numpy(image).permute(2, 0, 1).float(), atol=1e-3)


def test_crop_is_centred_on_an_unknown_pixel() -> None:
    np.random.seed(0)
    alpha = np.zeros((80, 80), np.float32)
    alpha[20:60, 20:60] = 1.0
    trimap = np.zeros((80, 80), np.uint8)
    trimap[15:65, 15:65] = 128
    trimap[25:55, 25:55] = 255
    results = {"fg": np.ones((80, 80, 3), np.float32), "alpha": alpha, "trimap": trimap,
               "bg": np.zeros((30, 30, 3), np.float32)}
    for _ in range(5):
        out = CropAroundUnknown(crop=32).transform({k: v.copy() for k, v in results.items()})
        assert out["trimap"].shape == (32, 32) and out["bg"].shape == (32, 32, 3)
        assert out["trimap"][16, 16] == 128


def test_identity_affine_leaves_the_foreground_unchanged() -> None:
    fg = np.random.default_rng(0).random((24, 30, 3)).astype(np.float32)
    alpha = fg[..., 0].copy()
    out = RandomAffineForeground(degrees=0, scale=(1.0, 1.0), shear=0, flip_prob=0.0).transform(
        {"fg": fg.copy(), "alpha": alpha.copy()})
    assert np.array_equal(out["fg"], fg) and np.array_equal(out["alpha"], alpha)
    flipped = RandomAffineForeground(degrees=0, scale=(1.0, 1.0), shear=0, flip_prob=1.0).transform(
        {"fg": fg.copy(), "alpha": alpha.copy()})
    assert np.array_equal(flipped["alpha"], alpha[::-1, ::-1])


def test_missing_list_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fg_list.txt"):
        OnlineCompositionDataset(data_root=str(tmp_path), pipeline=[])
