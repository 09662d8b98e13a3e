"""Procedural foreground objects with alpha: the embedded default data source (`compose.source: synthetic`).

Each foreground is drawn at 2× resolution and area-downsampled, so sub-pixel structure becomes fractional
alpha. Object families (picked per sample, sometimes two combined):
  fur    — textured body with holes, hundreds of short curled strands along and over its outline;
  hair   — head and shoulders with long gravity-bent strands, dense hair mass and flyaways;
  glass  — semi-transparent body (α 0.08–0.4) with an opaque-ish rim, highlights, maybe coloured liquid;
  smoke  — domain-warped fractal density in a soft envelope (continuous α), or a folded translucent veil;
  plant  — branching twigs thinning to sub-pixel width with leaves, or a net/lace with regular holes.
Effects: motion blur (p = 0.25) or defocus (p = 0.2) of the whole object. Everything is driven by one seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.compose import synthetic_layers as L

SUPERSAMPLE = 2
FAMILIES = ("fur", "hair", "glass", "smoke", "plant")
FAMILY_WEIGHTS = (0.3, 0.25, 0.15, 0.15, 0.15)


def _fur(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> L.Layer:
    s = shape[0]
    centre = (s * rng.uniform(0.35, 0.65), s * rng.uniform(0.35, 0.65))
    radius = s * rng.uniform(0.14, 0.26) * scale
    poly = L.blob_polygon(rng, centre, radius, rng.uniform(0.1, 0.45), 360, rng.uniform(0.7, 1.4),
                          rng.uniform(0, np.pi))
    coverage = L.fill_polygon(shape, poly)
    for _ in range(int(rng.integers(0, 3))):         # holes
        offset = rng.normal(0, radius * 0.25, 2)
        hole = L.blob_polygon(rng, (centre[0] + offset[0], centre[1] + offset[1]),
                              radius * rng.uniform(0.08, 0.22), 0.3)
        coverage *= 1 - L.fill_polygon(shape, hole)
    tex = L.texture(shape, rng)
    body = L.solid_layer(coverage, tex)
    n_edge = int(rng.uniform(500, 1400) * s / 512 * scale)
    long_fur, curl = rng.uniform(0.025, 0.1), rng.uniform(0.05, 0.35)
    roots = poly[rng.integers(0, len(poly), n_edge)]
    outward = np.arctan2(roots[:, 1] - centre[1], roots[:, 0] - centre[0]) + rng.normal(0, 0.4, n_edge)
    lengths = s * long_fur * rng.lognormal(0, 0.35, n_edge)
    inward = (lengths * rng.uniform(0.2, 0.6, n_edge))[:, None] * np.stack([np.cos(outward), np.sin(outward)], 1)
    starts = roots - inward
    n_in = int(n_edge * 0.6)                          # fur over the body surface (texture, not alpha)
    flow = rng.uniform(0, 2 * np.pi)
    strands = np.concatenate([
        L.walk_strands(rng, starts, outward, lengths, 7, curl),
        L.walk_strands(rng, starts, outward + rng.normal(0, 0.5, n_edge), 0.8 * lengths, 7, curl),
        L.walk_strands(rng, np.array(centre) + rng.normal(0, radius * 0.45, (n_in, 2)),
                       flow + rng.normal(0, 0.3, n_in), np.full(n_in, s * long_fur * 0.7), 7, curl)])
    ys = np.clip(strands[:, 0, 1].astype(int), 0, s - 1)
    xs = np.clip(strands[:, 0, 0].astype(int), 0, s - 1)
    colours = np.clip(tex[ys, xs] * rng.uniform(0.6, 1.4, (len(strands), 1)), 0, 1)
    thick = [1 if t < 0.85 else 2 for t in rng.random(len(strands))]
    fur = L.draw_strands(shape, strands, colours, thick, groups=12)
    return L.over(fur, body)


def _hair(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> L.Layer:
    s = shape[0]
    cx, cy = s * rng.uniform(0.4, 0.6), s * rng.uniform(0.3, 0.45)
    head_r = s * rng.uniform(0.11, 0.17) * scale
    head = L.fill_polygon(shape, L.blob_polygon(rng, (cx, cy), head_r, 0.08, 256, 0.8))
    shoulders = L.fill_polygon(shape, L.blob_polygon(rng, (cx, cy + head_r * 3.2), head_r * 2.6, 0.1, 256,
                                                     rng.uniform(1.1, 1.5)))
    body = L.over(L.solid_layer(head, L.texture(shape, rng)), L.solid_layer(shoulders, L.texture(shape, rng)))
    hair_colour = L.random_colour(rng, saturation=(0.1, 0.8), value=(0.1, 0.95))
    mass_poly = L.blob_polygon(rng, (cx, cy - head_r * 0.15), head_r * 1.12, 0.1, 256, 0.95)
    mass = L.fill_polygon(shape, mass_poly) * (L.fill_polygon(shape, L.blob_polygon(
        rng, (cx, cy - head_r * 0.9), head_r * 1.3, 0.05, 128, 1.3)))
    shade = 0.75 + 0.5 * L.fbm(shape, rng, base_cells=24, octaves=3, stretch=(0.3, 1.0))[..., None]
    body = L.over(L.solid_layer(np.clip(mass * 1.5, 0, 1), hair_colour * shade), body)
    n = int(rng.uniform(900, 2000) * s / 512 * scale)
    theta = rng.uniform(np.pi * 0.95, np.pi * 2.05, n)                # upper half of the head outline
    roots = np.stack([cx + 0.95 * head_r * np.cos(theta), cy + head_r * np.sin(theta)], 1)
    flyaway = rng.random(n) < 0.06
    lengths = s * rng.uniform(0.15, 0.45, n) * scale * np.where(flyaway, 1.3, 1.0)
    curl = rng.uniform(0.02, 0.1) * np.where(flyaway, 3.0, 1.0)
    gravity = rng.uniform(0.08, 0.2) * np.where(flyaway, 0.3, 1.0)
    side = np.where(np.cos(theta) + rng.normal(0, 0.15, n) < 0, -1.0, 1.0)   # hair parts at the crown
    heading = theta + rng.normal(0, 0.25, n) + side * rng.uniform(0.3, 0.9, n)
    strands = L.walk_strands(rng, roots, heading, lengths, 16, curl, gravity)
    colours = np.clip(hair_colour * rng.uniform(0.65, 1.35, (n, 1)), 0, 1)
    thick = [1 if t < 0.9 else 2 for t in rng.random(n)]
    return L.over(L.draw_strands(shape, strands, colours, thick, groups=10), body)


def _glass(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> L.Layer:
    s = shape[0]
    centre = (s * rng.uniform(0.35, 0.65), s * rng.uniform(0.35, 0.65))
    radius = s * rng.uniform(0.18, 0.3) * scale
    coverage = L.fill_polygon(shape, L.blob_polygon(rng, centre, radius, rng.uniform(0.0, 0.15), 256,
                                                    rng.uniform(0.45, 1.0), rng.uniform(-0.3, 0.3)))
    dist = cv2.distanceTransform((coverage > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    rim = np.exp(-dist / (s * rng.uniform(0.008, 0.025)))
    a_in, a_rim = rng.uniform(0.08, 0.4), rng.uniform(0.6, 0.95)
    tint = 1 - rng.uniform(0.1, 0.55) * (1 - L.random_colour(rng))
    colour = tint * (0.85 + 0.15 * L.fbm(shape, rng, base_cells=3, octaves=3)[..., None])
    layer = L.solid_layer(coverage, colour, a_in + (a_rim - a_in) * rim)
    if rng.random() < 0.5:                                     # coloured liquid in the lower part
        level = centre[1] + rng.uniform(-0.3, 0.5) * radius
        liquid = coverage * (np.arange(s, dtype=np.float32)[:, None] > level) * (dist > s * 0.01)
        layer = L.over(L.solid_layer(liquid, L.random_colour(rng), rng.uniform(0.4, 0.85)), layer)
    for _ in range(int(rng.integers(1, 4))):                   # highlights
        hl = L.blob_polygon(rng, (centre[0] + rng.normal(0, radius * 0.3), centre[1] + rng.normal(0, radius * 0.3)),
                            radius * rng.uniform(0.15, 0.4), 0.0, 64, rng.uniform(0.06, 0.2), rng.uniform(0, np.pi))
        glint = cv2.GaussianBlur(L.fill_polygon(shape, hl), (0, 0), 2.0) * coverage
        layer = L.over(L.solid_layer(glint, np.ones(3, np.float32), rng.uniform(0.5, 0.9)), layer)
    return layer


def _smoke(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> L.Layer:
    s = shape[0]
    centre = (s * rng.uniform(0.35, 0.65), s * rng.uniform(0.35, 0.65))
    envelope = L.fill_polygon(shape, L.blob_polygon(rng, centre, s * rng.uniform(0.2, 0.35) * scale, 0.4, 256,
                                                    rng.uniform(0.5, 1.2)))
    envelope = cv2.GaussianBlur(envelope, (0, 0), s * 0.04)
    if rng.random() < 0.6:                                    # smoke: domain-warped fractal density
        wx = (L.fbm(shape, rng, 3, 4) - 0.5) * s * 0.15
        wy = (L.fbm(shape, rng, 3, 4) - 0.5) * s * 0.15
        density = L.fbm(shape, rng, rng.uniform(3, 6), 6, 0.6, stretch=(rng.uniform(0.4, 1.0), 1.0))
        yy, xx = np.mgrid[0:s, 0:shape[1]].astype(np.float32)
        density = cv2.remap(density, xx + wx, yy + wy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        alpha = np.clip((density - rng.uniform(0.2, 0.45)) * rng.uniform(1.5, 3.0), 0, 1) ** rng.uniform(0.8, 1.6)
        grey = L.random_colour(rng, saturation=(0.0, 0.25), value=(0.5, 1.0))
        colour = grey * (0.7 + 0.3 * density[..., None])
    else:                                                     # veil: translucent folded fabric
        theta = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:s, 0:shape[1]].astype(np.float32)
        folds = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * rng.uniform(0.03, 0.08)
                       + 6 * L.fbm(shape, rng, 2, 3))
        alpha = np.clip(rng.uniform(0.25, 0.5) + 0.25 * folds, 0.05, 1)
        colour = L.random_colour(rng) * (0.8 + 0.2 * folds[..., None])
    return L.solid_layer(envelope, colour, alpha * rng.uniform(0.6, 1.0))


def _plant(rng: np.random.Generator, shape: tuple[int, int], scale: float = 1.0) -> L.Layer:
    s = shape[0]
    if rng.random() < 0.4:                                    # net / lace with holes
        mask = L.fill_polygon(shape, L.blob_polygon(rng, (s * 0.5, s * 0.5), s * rng.uniform(0.25, 0.4) * scale,
                                                    0.3, 256, rng.uniform(0.7, 1.3)))
        spacing, theta = s * rng.uniform(0.02, 0.06), rng.uniform(0, np.pi)
        lines = []
        for direction in (theta, theta + rng.uniform(np.pi / 3, np.pi / 2)):
            d, n = np.array([np.cos(direction), np.sin(direction)]), np.array([-np.sin(direction), np.cos(direction)])
            for k in np.arange(-s, s, spacing):
                start = np.array([s / 2, s / 2]) + n * k - d * s
                lines.append(L.walk_strand(rng, start, direction, 2 * s, 24, 0.01))
        colour = L.random_colour(rng)
        colours = np.clip(colour * rng.uniform(0.8, 1.2, (len(lines), 1)), 0, 1)
        net = L.draw_strands(shape, lines, colours, [int(rng.integers(1, 4))] * len(lines), groups=2)
        return net[0] * mask[..., None], net[1] * mask
    strands, colours, thick, leaves = [], [], [], []
    bark, leaf = L.random_colour(rng, value=(0.1, 0.5)), L.random_colour(rng)
    stack = [(np.array([s * rng.uniform(0.3, 0.7), s * 1.02]), -np.pi / 2 + rng.normal(0, 0.2), s * 0.3 * scale, 7)]
    while stack:
        start, heading, length, width = stack.pop()
        pts = L.walk_strand(rng, start, heading, length, 8, 0.08)
        strands.append(pts)
        colours.append(bark)
        thick.append(max(1, width))
        if width <= 1 or length < s * 0.03:
            leaves.append(pts[-1])
            continue
        for _ in range(int(rng.integers(2, 4))):
            stack.append((pts[int(rng.integers(3, 8))], heading + rng.normal(0, 0.6), length * rng.uniform(0.5, 0.75),
                          width - int(rng.integers(1, 3))))
    layer = L.draw_strands(shape, strands, np.array(colours), thick, groups=1)
    leaf_tex = L.texture(shape, rng) * 0.4 + leaf * 0.6
    cover = np.zeros(shape, np.float32)
    for tip in leaves:
        poly = L.blob_polygon(rng, tuple(tip), s * rng.uniform(0.01, 0.03), 0.2, 48, rng.uniform(0.3, 0.6),
                              rng.uniform(0, np.pi))
        cover = np.maximum(cover, L.fill_polygon(shape, poly))
    return L.over(L.solid_layer(cover, leaf_tex), layer)


RECIPES = {"fur": _fur, "hair": _hair, "glass": _glass, "smoke": _smoke, "plant": _plant}


def generate_foreground(seed: int | list[int], size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """One procedural foreground: (fg H×W×3 uint8, alpha H×W uint8, description), H = W = size.

    The same seed gives the same arrays on any machine with the same numpy/OpenCV versions.
    """
    if size < 16:
        raise ValueError(f"synthetic foreground size must be >= 16, got {size}")
    rng = np.random.default_rng(seed)
    shape = (size * SUPERSAMPLE, size * SUPERSAMPLE)
    family = str(rng.choice(FAMILIES, p=FAMILY_WEIGHTS))
    layer = RECIPES[family](rng, shape)
    parts = [family]
    if rng.random() < 0.3:                                    # a second, smaller object behind or in front
        extra = str(rng.choice([f for f in FAMILIES if f != family]))
        second = RECIPES[extra](rng, shape, 0.6)
        layer = L.over(second, layer) if rng.random() < 0.5 else L.over(layer, second)
        parts.append(extra)
    effect = rng.random()
    if effect < 0.25:
        layer = L.motion_blur(layer, int(shape[0] * rng.uniform(0.015, 0.06)), rng.uniform(0, np.pi))
        parts.append("motion-blur")
    elif effect < 0.45:
        layer = L.defocus(layer, rng.uniform(0.8, 2.5) * SUPERSAMPLE)
        parts.append("defocus")
    colour, alpha = layer
    colour = cv2.resize(colour, (size, size), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(np.clip(alpha, 0, 1), (size, size), interpolation=cv2.INTER_AREA)
    fg, alpha = L.unpremultiply((colour, alpha))
    alpha8 = np.clip(np.round(alpha * 255), 0, 255).astype(np.uint8)
    fg8 = np.clip(np.round(fg * 255), 0, 255).astype(np.uint8)
    return fg8, alpha8, "+".join(parts)


@dataclass(frozen=True)
class SyntheticForeground:
    """A ForegroundSource that generates its foreground from a seed (see generate_foreground)."""
    seed: tuple[int, ...]
    size: int

    def load(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        fg, alpha, kind = generate_foreground(list(self.seed), self.size)
        seed_text = "-".join(str(s) for s in self.seed)
        return fg, alpha, [f"synthetic:{kind}:seed={seed_text}", f"synthetic:alpha:seed={seed_text}"]
