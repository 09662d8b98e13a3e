"""GCA-style online-composition transforms for matting training (spec 5.1), registered in MMEngine TRANSFORMS.

A training sample flows through, in order: `LoadCompositionSample` → `MixSecondForeground` (p 0.5) →
`RandomResizeForeground` (p 0.25) → `RandomAffineForeground` → `RandomFlipForeground` → `GenerateRandomTrimap`
→ `CropAroundUnknown` → `HSVJitterForeground` → `CompositeImage` → `PackMattingInputs`. A validation sample:
`LoadMattingValSample` → `PackMattingInputs(with_targets=False)`.

Arrays inside `results`: `fg`, `bg`, `image` H×W×3 float32 in [0, 1]; `alpha` H×W float32 in [0, 1]; `trimap`
H×W uint8 0/128/255. Randomness comes from numpy's global generator, which MMEngine seeds per run and per
dataloader worker (`randomness.seed`), so a seeded run replays exactly. Deviations from the official pipeline:
the background is cropped/upscaled to the foreground size before the crop (no separate bg scaling), and a crop
without any unknown pixel falls back to resizing the whole sample (as the official code does for an empty one).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS

from models.matting.inputs import build_network_input
from pipeline.core.trimap import random_trimap
from pipeline.core.io import check_same_size, read_alpha, read_rgb, read_trimap

UNKNOWN = 128


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


def _resize(image: np.ndarray, size_hw: tuple[int, int], interp: int = cv2.INTER_NEAREST) -> np.ndarray:
    return cv2.resize(image, (int(size_hw[1]), int(size_hw[0])), interpolation=interp)


def _check_prob(prob: float, name: str) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {prob}")


@TRANSFORMS.register_module()
class LoadCompositionSample(BaseTransform):
    """Read `fg_path`/`alpha_path`/`bg_path` (and `fg2_path`/`alpha2_path` when present) into float arrays."""

    def transform(self, results: dict) -> dict:
        results["fg"] = _to_float(read_rgb(results["fg_path"]))
        results["alpha"] = _to_float(read_alpha(results["alpha_path"]))
        if results["fg"].shape[:2] != results["alpha"].shape:
            raise ValueError(f"{results['fg_path']}: size {results['fg'].shape[:2]} differs from its alpha "
                             f"{results['alpha_path']} {results['alpha'].shape}")
        results["bg"] = _to_float(read_rgb(results["bg_path"]))
        if results.get("fg2_path"):
            results["fg2"] = _to_float(read_rgb(results["fg2_path"]))
            results["alpha2"] = _to_float(read_alpha(results["alpha2_path"]))
        return results


@TRANSFORMS.register_module()
class LoadMattingValSample(BaseTransform):
    """Read a validation sample: `image` H×W×3 uint8 RGB, `alpha` H×W uint8, `trimap` H×W uint8 (0/128/255)."""

    def transform(self, results: dict) -> dict:
        results["image"] = read_rgb(results["image_path"])
        results["alpha"] = read_alpha(results["alpha_path"])
        results["trimap"] = read_trimap(results["trimap_path"])
        check_same_size({key: results[key] for key in ("image", "alpha", "trimap")}, results["image_path"])
        return results


@TRANSFORMS.register_module()
class MixSecondForeground(BaseTransform):
    """With probability `prob`, overlay the second foreground: α = 1 − (1−α₁)(1−α₂), F blended by coverage."""

    def __init__(self, prob: float = 0.5) -> None:
        _check_prob(prob, "MixSecondForeground.prob")
        self.prob = prob

    def transform(self, results: dict) -> dict:
        fg2, alpha2 = results.pop("fg2", None), results.pop("alpha2", None)
        if fg2 is None or np.random.rand() >= self.prob:
            return results
        fg1, alpha1 = results["fg"], results["alpha"]
        fg2, alpha2 = _resize(fg2, alpha1.shape), _resize(alpha2, alpha1.shape)
        alpha = 1.0 - (1.0 - alpha1) * (1.0 - alpha2)
        if np.any(alpha < 1.0):  # the official code skips mixes that would cover the whole image
            a1, a2 = alpha1[..., None], alpha2[..., None]
            results["fg"] = (fg1 * a1 + fg2 * (1.0 - a1) * a2) / (alpha[..., None] + 1e-5)
            results["alpha"] = alpha
        return results


@TRANSFORMS.register_module()
class RandomResizeForeground(BaseTransform):
    """With probability `prob`, resize fg and alpha to `size`×`size` (nearest), as GCA's 640×640 step."""

    def __init__(self, prob: float = 0.25, size: int = 640) -> None:
        _check_prob(prob, "RandomResizeForeground.prob")
        self.prob, self.size = prob, size

    def transform(self, results: dict) -> dict:
        if np.random.rand() < self.prob:
            results["fg"] = _resize(results["fg"], (self.size, self.size))
            results["alpha"] = _resize(results["alpha"], (self.size, self.size))
        return results


@TRANSFORMS.register_module()
class RandomAffineForeground(BaseTransform):
    """Random affine warp of fg and alpha about the centre (nearest interpolation, zero outside).

    Rotation ±`degrees` only when max(H, W) ≥ `rotate_min_size`; scale U(`scale`) per axis independently; x-shear
    ±`shear` degrees; each axis flipped with probability `flip_prob` (spec 5.1 step 3).
    """

    def __init__(self, degrees: float = 30.0, rotate_min_size: int = 1024, scale: tuple[float, float] = (0.8, 1.25),
                 shear: float = 10.0, flip_prob: float = 0.5) -> None:
        _check_prob(flip_prob, "RandomAffineForeground.flip_prob")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomAffineForeground.scale must be (low, high) with 0 < low <= high, got {scale}")
        self.degrees, self.rotate_min_size, self.scale = degrees, rotate_min_size, tuple(scale)
        self.shear, self.flip_prob = shear, flip_prob

    def transform(self, results: dict) -> dict:
        height, width = results["alpha"].shape
        angle = np.random.uniform(-self.degrees, self.degrees) if max(height, width) >= self.rotate_min_size else 0.0
        scale_xy = np.random.uniform(*self.scale, size=2)
        shear = np.random.uniform(-self.shear, self.shear)
        flips = np.where(np.random.rand(2) < self.flip_prob, -1.0, 1.0)
        theta, phi = np.deg2rad(angle), np.deg2rad(shear)
        rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        linear = rotation @ np.array([[1.0, np.tan(phi)], [0.0, 1.0]]) @ np.diag(scale_xy * flips)
        centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
        matrix = np.hstack([linear, (centre - linear @ centre)[:, None]])
        for key in ("fg", "alpha"):
            results[key] = cv2.warpAffine(results[key], matrix, (width, height), flags=cv2.INTER_NEAREST,
                                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return results


@TRANSFORMS.register_module()
class RandomFlipForeground(BaseTransform):
    """Horizontal flip of fg and alpha with probability `prob`."""

    def __init__(self, prob: float = 0.5) -> None:
        _check_prob(prob, "RandomFlipForeground.prob")
        self.prob = prob

    def transform(self, results: dict) -> dict:
        if np.random.rand() < self.prob:
            results["fg"] = np.ascontiguousarray(results["fg"][:, ::-1])
            results["alpha"] = np.ascontiguousarray(results["alpha"][:, ::-1])
        return results


@TRANSFORMS.register_module()
class GenerateRandomTrimap(BaseTransform):
    """Trimap from alpha by random elliptical erosions of fg and bg (`pipeline.core.trimap.random_trimap`)."""

    def __init__(self, kernel_range: tuple[int, int] = (1, 29)) -> None:
        self.kernel_range = tuple(kernel_range)

    def transform(self, results: dict) -> dict:
        alpha_u8 = np.clip(np.rint(results["alpha"] * 255.0), 0, 255).astype(np.uint8)
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        results["trimap"] = random_trimap(alpha_u8, rng, kernel_range=self.kernel_range)
        return results


@TRANSFORMS.register_module()
class CropAroundUnknown(BaseTransform):
    """Crop `crop`×`crop` around a random unknown pixel; fit the background to the foreground first.

    Foregrounds with a side ≤ `crop` are upscaled (nearest) by 1.1·crop/short side. The crop's top-left is a random
    unknown pixel of the interior [crop/2, H−crop/2) × [crop/2, W−crop/2), in interior coordinates (as the
    official code), i.e. the crop is centred on it. Fewer than 10 such pixels: random crop; a crop without any
    unknown pixel: the whole sample resized to `crop`×`crop` instead.
    """

    def __init__(self, crop: int = 512) -> None:
        if crop < 16 or crop % 16:
            raise ValueError(f"CropAroundUnknown.crop must be a positive multiple of 16, got {crop}")
        self.crop = crop

    def _fit_background(self, bg: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
        height, width = size_hw
        if bg.shape[0] < height or bg.shape[1] < width:
            ratio = max(height / bg.shape[0], width / bg.shape[1])
            bg = _resize(bg, (int(np.ceil(bg.shape[0] * ratio)), int(np.ceil(bg.shape[1] * ratio))), cv2.INTER_CUBIC)
        top = np.random.randint(0, bg.shape[0] - height + 1)
        left = np.random.randint(0, bg.shape[1] - width + 1)
        return np.clip(bg[top:top + height, left:left + width], 0.0, 1.0)

    def transform(self, results: dict) -> dict:
        crop, half = self.crop, self.crop // 2
        height, width = results["alpha"].shape
        if min(height, width) <= crop:
            ratio = 1.1 * crop / min(height, width)
            size = (int(np.ceil(height * ratio)), int(np.ceil(width * ratio)))
            for key in ("fg", "alpha", "trimap"):
                results[key] = _resize(results[key], size)
            height, width = size
        results["bg"] = self._fit_background(results["bg"], (height, width))
        ys, xs = np.nonzero(results["trimap"][half:height - half, half:width - half] == UNKNOWN)
        if len(ys) >= 10:
            pick = np.random.randint(len(ys))
            top, left = int(ys[pick]), int(xs[pick])
        else:
            top, left = np.random.randint(0, height - crop + 1), np.random.randint(0, width - crop + 1)
        keys = ("fg", "alpha", "trimap", "bg")
        if np.any(results["trimap"][top:top + crop, left:left + crop] == UNKNOWN):
            for key in keys:
                results[key] = np.ascontiguousarray(results[key][top:top + crop, left:left + crop])
        else:
            for key in keys:
                interp = cv2.INTER_CUBIC if key == "bg" else cv2.INTER_NEAREST
                results[key] = _resize(results[key], (crop, crop), interp)
            results["bg"] = np.clip(results["bg"], 0.0, 1.0)
        return results


@TRANSFORMS.register_module()
class HSVJitterForeground(BaseTransform):
    """GCA colour jitter of the foreground: hue + U{−40…39}°, saturation/value shifted by U(−1,1)·(1.1−mean)/10."""

    def transform(self, results: dict) -> dict:
        fg, alpha = results["fg"].astype(np.float32), results["alpha"]
        hsv = cv2.cvtColor(np.clip(fg, 0.0, 1.0), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.remainder(hsv[..., 0] + np.random.randint(-40, 40), 360.0)
        covered = alpha > 0
        for channel in (1, 2):
            mean = float(hsv[..., channel][covered].mean()) if covered.any() else 0.5
            shifted = np.abs(hsv[..., channel] + (np.random.rand() * 2.0 - 1.0) * (1.1 - mean) / 10.0)
            hsv[..., channel] = np.where(shifted > 1.0, 2.0 - shifted, shifted)
        results["fg"] = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
        return results


@TRANSFORMS.register_module()
class CompositeImage(BaseTransform):
    """I = F·α + B·(1−α), clipped to [0, 1]."""

    def transform(self, results: dict) -> dict:
        alpha = results["alpha"][..., None]
        results["image"] = np.clip(results["fg"] * alpha + results["bg"] * (1.0 - alpha), 0.0, 1.0)
        return results


def _chw(array: np.ndarray) -> torch.Tensor:
    array = array[..., None] if array.ndim == 2 else array
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackMattingInputs(BaseTransform):
    """Build `{'inputs': 4×H×W network input, 'data_samples': dict of C×H×W targets}`.

    Training (`with_targets=True`): targets `alpha`, `unknown` (1×H×W float), `fg`, `bg`, `image` (3×H×W), all in
    [0, 1]. Validation: `alpha` and `trimap` as 1×H×W uint8 (0–255, for the MATLAB-style metrics) and `name`.
    """

    def __init__(self, with_targets: bool = True) -> None:
        self.with_targets = with_targets

    def transform(self, results: dict) -> dict:
        image, trimap = _chw(results["image"]), _chw(results["trimap"])
        inputs = build_network_input(image[None], trimap[None])[0]  # uint8 image is /255-scaled there
        if self.with_targets:
            samples = {"alpha": _chw(results["alpha"].astype(np.float32)),
                       "unknown": _chw((results["trimap"] == UNKNOWN).astype(np.float32)),
                       "fg": _chw(results["fg"].astype(np.float32)), "bg": _chw(results["bg"].astype(np.float32)),
                       "image": _chw(results["image"].astype(np.float32))}
        else:
            samples = {"alpha": _chw(results["alpha"]), "trimap": trimap, "name": results.get("name", "")}
        return {"inputs": inputs, "data_samples": samples}
