"""Drawing primitives for procedural foregrounds: noise, textures, shapes, strands, layers.

A layer is a pair (C, A) at the supersampled canvas resolution: C is H×W×3 premultiplied colour in [0, 1],
A is H×W coverage in [0, 1]. Layers stack with the premultiplied "over" operator, and blurs act on (C, A)
together, so colour and alpha stay consistent (F = C / A). Strands are drawn with OpenCV's anti-aliased
lines at sub-pixel width, which yields the fractional alpha of hair after the final area downsampling.
"""
from __future__ import annotations

import cv2
import numpy as np

Layer = tuple[np.ndarray, np.ndarray]
SHIFT = 4                       # fixed-point bits for sub-pixel polygon and line coordinates
SCALE = float(1 << SHIFT)


def fbm(shape: tuple[int, int], rng: np.random.Generator, base_cells: float = 4.0, octaves: int = 5,
        persistence: float = 0.55, stretch: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Fractal value noise in [0, 1], H×W float32: bicubically upsampled random grids summed over octaves."""
    h, w = shape
    total = np.zeros(shape, np.float32)
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        cells = base_cells * (2 ** octave)
        gh = max(2, int(round(cells * stretch[0])))
        gw = max(2, int(round(cells * stretch[1])))
        grid = rng.random((gh, gw), dtype=np.float32)
        total += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= persistence
    total /= norm
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def random_colour(rng: np.random.Generator, saturation: tuple[float, float] = (0.2, 0.95),
                  value: tuple[float, float] = (0.15, 1.0)) -> np.ndarray:
    """An RGB colour in [0, 1]^3 drawn in HSV (any hue)."""
    hsv = np.array([[[rng.uniform(0, 360), rng.uniform(*saturation), rng.uniform(*value)]]], np.float32)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]


def texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A varied colour texture H×W×3 in [0, 1]: two-colour noise mix, maybe stripes or spots, shading."""
    h, w = shape
    c1, c2 = random_colour(rng), random_colour(rng)
    mix = fbm(shape, rng, base_cells=rng.uniform(2, 8), octaves=5)[..., None]
    tex = c1 * (1 - mix) + c2 * mix
    pattern = rng.choice(["plain", "stripes", "spots", "grain"], p=[0.3, 0.3, 0.2, 0.2])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if pattern == "stripes":
        theta = rng.uniform(0, np.pi)
        freq = rng.uniform(0.04, 0.15) * 512 / max(h, w)
        warp = fbm(shape, rng, base_cells=3, octaves=3) * rng.uniform(2, 8)
        s = np.sin(freq * (xx * np.cos(theta) + yy * np.sin(theta)) + warp)
        band = np.clip((s - rng.uniform(-0.2, 0.6)) * 4, 0, 1)[..., None]
        tex = tex * (1 - band) + random_colour(rng, value=(0.0, 0.5)) * band
    elif pattern == "spots":
        spots = fbm(shape, rng, base_cells=rng.uniform(10, 20), octaves=2)
        band = np.clip((spots - 0.62) * 10, 0, 1)[..., None]
        tex = tex * (1 - band) + random_colour(rng) * band
    elif pattern == "grain":
        grain = fbm(shape, rng, base_cells=48, octaves=2)[..., None]
        tex = tex * (0.75 + 0.5 * grain)
    light = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1)], np.float32)
    shade = 1.0 + 0.35 * ((xx / w - 0.5) * light[0] + (yy / h - 0.5) * light[1])
    return np.clip(tex * shade[..., None], 0, 1).astype(np.float32)


def blob_polygon(rng: np.random.Generator, centre: tuple[float, float], radius: float,
                 roughness: float = 0.25, points: int = 256, aspect: float = 1.0,
                 angle: float = 0.0) -> np.ndarray:
    """A closed smooth random shape: radius modulated by a few low harmonics; N×2 float (x, y)."""
    theta = np.linspace(0, 2 * np.pi, points, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 7):
        r += roughness / k * rng.normal() * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.35, None) * radius
    x, y = r * np.cos(theta) * aspect, r * np.sin(theta)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def fill_polygon(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage of a polygon (N×2 float x, y) as H×W float32 in [0, 1]."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(polygon * SCALE).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=SHIFT)
    return canvas.astype(np.float32) / 255.0


def walk_strands(rng: np.random.Generator, starts: np.ndarray, angles: np.ndarray, lengths: np.ndarray,
                 steps: int, curl: float | np.ndarray, gravity: float | np.ndarray = 0.0) -> np.ndarray:
    """N curved strands at once: random walks in heading (curl, rad/step) with an optional downward pull.

    starts: N×2 (x, y); angles, lengths: N. Returns N×steps×2 float64 points.
    """
    starts = np.asarray(starts, np.float64).reshape(-1, 2)
    n = len(starts)
    heading = np.asarray(angles, np.float64).reshape(n).copy()
    step = np.asarray(lengths, np.float64).reshape(n) / (steps - 1)
    curl = np.broadcast_to(np.asarray(curl, np.float64), (n,))
    gravity = np.broadcast_to(np.asarray(gravity, np.float64), (n,))
    points = np.empty((n, steps, 2))
    points[:, 0] = starts
    for k in range(1, steps):
        heading = heading + rng.normal(0.0, 1.0, n) * curl
        towards_down = np.mod(np.pi / 2 - heading + np.pi, 2 * np.pi) - np.pi   # +y is down on the canvas
        heading = heading + gravity * towards_down
        points[:, k, 0] = points[:, k - 1, 0] + step * np.cos(heading)
        points[:, k, 1] = points[:, k - 1, 1] + step * np.sin(heading)
    return points


def walk_strand(rng: np.random.Generator, start: np.ndarray, angle: float, length: float, steps: int,
                curl: float, gravity: float = 0.0) -> np.ndarray:
    """One strand (see walk_strands); steps×2."""
    return walk_strands(rng, np.asarray(start)[None], np.array([angle]), np.array([length]), steps, curl,
                        gravity)[0]


def draw_strands(shape: tuple[int, int], strands: list[np.ndarray] | np.ndarray, colours: np.ndarray,
                 thickness: list[int], groups: int = 8) -> Layer:
    """Draw polylines (AA, sub-pixel coordinates) into premultiplied colour and coverage canvases.

    OpenCV blends an AA line into the canvas by its coverage, dst += (value − dst)·cov, on both canvases with
    the same coverage, so C / A stays a weighted mean of strand colours. Strands are grouped by colour
    (k-means-free: sorted by luminance into `groups` bins) to keep the number of drawing calls small.
    """
    h, w = shape
    colour_canvas = np.zeros((h, w, 3), np.uint8)
    alpha_canvas = np.zeros((h, w), np.uint8)
    if len(strands) == 0:
        return colour_canvas.astype(np.float32), alpha_canvas.astype(np.float32)
    order = np.argsort(colours.sum(axis=1))
    for bin_ids in np.array_split(order, min(groups, len(order))):
        for t in sorted({thickness[i] for i in bin_ids}):
            members = [i for i in bin_ids if thickness[i] == t]
            pts = [np.round(strands[i] * SCALE).astype(np.int32) for i in members]
            colour = tuple(float(v) for v in np.clip(colours[members].mean(axis=0) * 255, 0, 255))
            cv2.polylines(colour_canvas, pts, False, colour, t, cv2.LINE_AA, SHIFT)
            cv2.polylines(alpha_canvas, pts, False, 255, t, cv2.LINE_AA, SHIFT)
    return colour_canvas.astype(np.float32) / 255.0, alpha_canvas.astype(np.float32) / 255.0


def over(top: Layer, bottom: Layer) -> Layer:
    """Premultiplied over: C = Ct + Cb(1 − At), A = At + Ab(1 − At)."""
    ct, at = top
    cb, ab = bottom
    return ct + cb * (1 - at)[..., None], at + ab * (1 - at)


def solid_layer(coverage: np.ndarray, colour: np.ndarray, opacity: float | np.ndarray = 1.0) -> Layer:
    """A layer of straight colour (H×W×3 or 3) with coverage × opacity."""
    alpha = np.clip(coverage * opacity, 0, 1).astype(np.float32)
    colour = np.broadcast_to(np.asarray(colour, np.float32), coverage.shape + (3,))
    return colour * alpha[..., None], alpha


def motion_blur(layer: Layer, length: int, angle: float) -> Layer:
    """Linear motion blur of `length` px at `angle` (rad), applied to C and A alike."""
    length = max(3, int(length) | 1)
    kernel = np.zeros((length, length), np.float32)
    c = length // 2
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(kernel, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
             cv2.LINE_AA)
    kernel /= kernel.sum()
    colour, alpha = layer
    return cv2.filter2D(colour, -1, kernel), np.clip(cv2.filter2D(alpha, -1, kernel), 0, 1)


def defocus(layer: Layer, sigma: float) -> Layer:
    """Gaussian defocus of C and A alike (soft edges)."""
    colour, alpha = layer
    return cv2.GaussianBlur(colour, (0, 0), sigma), cv2.GaussianBlur(alpha, (0, 0), sigma)


def unpremultiply(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Straight colour F (H×W×3) and alpha A; where A ≈ 0, F is extrapolated by normalised convolution."""
    colour, alpha = layer
    alpha = np.clip(alpha, 0, 1)
    fg = colour / np.maximum(alpha, 1e-6)[..., None]
    filled = alpha > 1e-3
    result = np.where(filled[..., None], fg, 0).astype(np.float32)
    done = filled.copy()
    h, w = alpha.shape
    for sigma in (2.0, 8.0, 32.0, 128.0):
        num = cv2.GaussianBlur(colour, (0, 0), sigma)
        den = cv2.GaussianBlur(alpha, (0, 0), sigma)
        ok = (den > 1e-3) & ~done
        result[ok] = num[ok] / den[ok][..., None]
        done |= ok
    if not done.all():
        mean = colour.reshape(-1, 3).sum(0) / max(float(alpha.sum()), 1e-6)
        result[~done] = mean if alpha.sum() > 0 else 0.5
    return np.clip(result, 0, 1), alpha
