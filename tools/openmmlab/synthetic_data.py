"""Synthetic batches for smoke-training the mmseg / mmdet configs in `configs/openmmlab/` on CPU.

Every image is a noisy grey background with one or two flat-coloured axis-aligned rectangles. Segmentation
labels mark rectangle pixels as class 1; detection targets are one instance (box, class 0, mask) per
rectangle. All randomness comes from the `torch.Generator` the caller passes, so a seed fixes the data.
Batches have the layout `model.train_step` expects: `dict(inputs=[uint8 (3, H, W)], data_samples=[...])`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

MIN_BOX_FRACTION = 0.25  # rectangle sides span 25–60 % of the image side
MAX_BOX_FRACTION = 0.6


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """One integer in [low, high) drawn from `generator`."""
    return int(torch.randint(low, high, (1,), generator=generator))


def random_rectangles_image(size: int, num_boxes: int, generator: torch.Generator
                            ) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
    """A uint8 (3, size, size) image and its rectangles as (x1, y1, x2, y2), exclusive x2 / y2."""
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    noise = torch.randn((3, size, size), generator=generator) * 12.0 + 96.0
    image = noise.clamp(0, 255)
    boxes = []
    for _ in range(num_boxes):
        w = _randint(int(size * MIN_BOX_FRACTION), int(size * MAX_BOX_FRACTION) + 1, generator)
        h = _randint(int(size * MIN_BOX_FRACTION), int(size * MAX_BOX_FRACTION) + 1, generator)
        x1 = _randint(0, size - w + 1, generator)
        y1 = _randint(0, size - h + 1, generator)
        colour = torch.rand((3, 1, 1), generator=generator) * 80.0 + 160.0
        image[:, y1:y1 + h, x1:x1 + w] = colour
        boxes.append((x1, y1, x1 + w, y1 + h))
    return image.round().to(torch.uint8), boxes


def segmentation_batch(batch_size: int, size: int, generator: torch.Generator) -> dict[str, list[Any]]:
    """mmseg batch: `SegDataSample.gt_sem_seg` is (1, size, size) int64 with 1 inside rectangles, else 0."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    inputs, samples = [], []
    for _ in range(batch_size):
        image, boxes = random_rectangles_image(size, _randint(1, 3, generator), generator)
        label = torch.zeros((1, size, size), dtype=torch.int64)
        for x1, y1, x2, y2 in boxes:
            label[:, y1:y2, x1:x2] = 1
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def detection_batch(batch_size: int, size: int, generator: torch.Generator) -> dict[str, list[Any]]:
    """mmdet batch: one instance per rectangle (xyxy box, label 0, BitmapMasks mask). Later boxes overwrite
    earlier ones in the image, so masks are cut accordingly."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    inputs, samples = [], []
    for _ in range(batch_size):
        image, boxes = random_rectangles_image(size, _randint(1, 3, generator), generator)
        masks = np.zeros((len(boxes), size, size), dtype=np.uint8)
        for index, (x1, y1, x2, y2) in enumerate(boxes):
            masks[:index, y1:y2, x1:x2] = 0  # occluded by this later rectangle
            masks[index, y1:y2, x1:x2] = 1
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.zeros(len(boxes), dtype=torch.int64),
            masks=BitmapMasks(masks, size, size))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


BATCH_MAKERS = {'segmentation': segmentation_batch, 'detection': detection_batch}
