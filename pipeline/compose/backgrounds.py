"""Background photographs that ship with scikit-image and scikit-learn (no network), and random views of them.

The photographs are split by name so that training backgrounds and validation/test backgrounds are disjoint,
as COCO (train) and PASCAL VOC (test) are in Composition-1k. A view is a random crop (scale and aspect),
a random horizontal flip, and a colour change (hue rotation, saturation, gamma, contrast), seeded.
Grayscale textures (brick, grass, gravel, camera) are tinted so they read as colour photographs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# name -> (loader kind, attribute). Only loaders verified to work offline.
TRAIN_PHOTOS = ("astronaut", "chelsea", "rocket", "stereo_motorcycle", "immunohistochemistry", "china",
                "brick", "grass")
HELD_OUT_PHOTOS = ("coffee", "flower", "hubble_deep_field", "gravel", "camera")
_SKLEARN = {"china": "china.jpg", "flower": "flower.jpg"}


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One bundled photograph as H×W×3 uint8 RGB (grayscale ones replicated). Raises KeyError if unknown."""
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(_SKLEARN[name])
    else:
        import skimage.data

        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise KeyError(f"background photo '{name}' is not in skimage.data or sklearn sample images")
        image = loader()
        if isinstance(image, tuple):       # stereo_motorcycle -> (left, right, disparity)
            image = image[0]
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"background photo '{name}' has dtype {image.dtype}, expected uint8")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def photo_pool(split: str) -> tuple[str, ...]:
    """Photo names for a split: training photos for 'train', held-out photos for 'val' and 'test'."""
    if split == "train":
        return TRAIN_PHOTOS
    if split in ("val", "test"):
        return HELD_OUT_PHOTOS
    raise ValueError(f"unknown split {split!r}; expected train, val or test")


def _colour_change(image: np.ndarray, rng: np.random.Generator, grayscale_source: bool) -> np.ndarray:
    """Seeded hue rotation, saturation scale, gamma and contrast; tints grayscale sources."""
    rgb = image.astype(np.float32) / 255.0
    if grayscale_source:
        tint = rng.uniform(0.45, 1.0, size=3).astype(np.float32)
        rgb = rgb * tint / tint.max()
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-40.0, 40.0)) % 360.0
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0.0, 1.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    rgb = np.clip(rgb, 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    contrast = rng.uniform(0.75, 1.2)
    rgb = (rgb - rgb.mean()) * contrast + rgb.mean()
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def random_view(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                grayscale_source: bool = False) -> np.ndarray:
    """A random crop of `photo` resized to size=(H, W), maybe flipped, colour-changed; H×W×3 uint8."""
    out_h, out_w = size
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.35, 1.0)
    aspect = (out_w / out_h) * np.exp(rng.uniform(-0.2, 0.2))
    crop_h = int(min(ph, pw / aspect) * scale)
    crop_w = int(min(pw, crop_h * aspect))
    crop_h, crop_w = max(crop_h, 8), max(crop_w, 8)
    y = int(rng.integers(0, ph - crop_h + 1))
    x = int(rng.integers(0, pw - crop_w + 1))
    crop = photo[y:y + crop_h, x:x + crop_w]
    interp = cv2.INTER_AREA if crop_h > out_h else cv2.INTER_CUBIC
    view = cv2.resize(crop, (out_w, out_h), interpolation=interp)
    if rng.random() < 0.5:
        view = view[:, ::-1]
    return _colour_change(np.ascontiguousarray(view), rng, grayscale_source)


def is_grayscale(image: np.ndarray) -> bool:
    """True when the three channels are identical."""
    return bool(np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2]))


@dataclass(frozen=True)
class PhotoBackground:
    """A seeded random view of a bundled photograph from the split's pool (a BackgroundSource)."""
    split: str
    seed: tuple[int, ...]
    size: tuple[int, int]

    def choose(self) -> tuple[str, np.ndarray]:
        rng = np.random.default_rng(list(self.seed))
        pool = photo_pool(self.split)
        name = pool[int(rng.integers(len(pool)))]
        photo = load_photo(name)
        return name, random_view(photo, self.size, rng, is_grayscale(photo))

    def load(self) -> tuple[Image.Image, list[str]]:
        name, view = self.choose()
        seed_text = "-".join(str(s) for s in self.seed)
        return Image.fromarray(view), [f"photo:{name}:seed={seed_text}"]
