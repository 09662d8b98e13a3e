"""A contact sheet of a composed split: rows of (image, alpha, trimap[, fg]) for a person to look at."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.core.io import read_gray, read_name_list, read_rgb, write_image

HEADER = 22


def _tile(image: np.ndarray, size: int) -> np.ndarray:
    """Fit an H×W(×3) uint8 image into a size×size RGB tile (aspect kept, padded with dark grey)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    tile = np.full((size, size, 3), 40, np.uint8)
    y, x = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    tile[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return tile


def _label(text: str, width: int) -> np.ndarray:
    bar = np.full((HEADER, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def make_contact_sheet(set_dir: str | Path, out_path: str | Path, split: str = "test", max_rows: int = 12,
                       tile: int = 192, groups: int = 2) -> Path:
    """Write a PNG grid of the first `max_rows` samples of `split` (names from <split>/list.txt)."""
    split_dir = Path(set_dir) / split
    names = read_name_list(split_dir / "list.txt")[:max_rows]
    if not names:
        raise ValueError(f"{split_dir / 'list.txt'}: no samples to show")
    kinds = ["image", "alpha", "trimap"] + (["fg"] if (split_dir / "fg").is_dir() else [])
    rows = []
    for name in names:
        tiles = [_tile(read_rgb(split_dir / k / f"{name}.png") if k in ("image", "fg")
                       else read_gray(split_dir / k / f"{name}.png", k), tile) for k in kinds]
        row = np.concatenate(tiles, axis=1)
        rows.append(np.concatenate([_label(f"{name}: " + " | ".join(kinds), row.shape[1]), row], axis=0))
    per_group = -(-len(rows) // groups)
    blank = np.zeros_like(rows[0])
    columns = []
    for g in range(groups):
        chunk = rows[g * per_group:(g + 1) * per_group]
        if not chunk:
            break
        chunk += [blank] * (per_group - len(chunk))
        columns.append(np.concatenate(chunk, axis=0))
        columns.append(np.full((columns[-1].shape[0], 8, 3), 255, np.uint8))
    return write_image(out_path, np.concatenate(columns[:-1], axis=1))
