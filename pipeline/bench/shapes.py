"""Which feature shapes the operator benchmark runs, and which it skips (with the reason written out).

A shape is the *high-resolution* side of one ×2 stage: the downsampler takes N×C×R×R to R/2 and the
upsampler brings the low-resolution map back to R. In the matting network (spec §4.1) an input of H×H has
four stages: C=64 at R=H and H/2 (stem), C=128 at H/4 (layer2), C=256 at H/8 (layer3). The toy network
(toy_protocol.md) has C=32/64/128 at R=32/16/8.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

#: (channels, divisor of the input size) for the four ×2 stages of the matting network.
MATTING_STAGES = ((64, 1), (64, 2), (128, 4), (256, 8))
#: (channels, resolution) for the toy network's three ×2 stages.
TOY_STAGES = ((32, 32), (64, 16), (128, 8))
FLOAT_BYTES = 4
#: Rough peak/input ratio of the heaviest case (forward+backward of a pair with kernels); used only to skip.
PEAK_OVER_INPUT = 8


@dataclass(frozen=True)
class OpShape:
    """One benchmark shape: batch, channels, high-resolution size R (even), and where it occurs."""

    batch: int
    channels: int
    size: int
    where: str

    @property
    def elements(self) -> int:
        return self.batch * self.channels * self.size * self.size

    def as_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "channels": self.channels, "size": self.size, "where": self.where}


def stage_shapes(matting_sizes: Iterable[int], include_toy: bool = True) -> list[tuple[int, int, str]]:
    """Unique (channels, R, where) triples for the given matting input sizes (and the toy net), sorted big first."""
    found: dict[tuple[int, int], list[str]] = {}
    for size in matting_sizes:
        if size % 16:
            raise ValueError(f"bench.op_matting_sizes: {size} is not a multiple of 16 (the network stride)")
        for level, (channels, divisor) in enumerate(MATTING_STAGES):
            found.setdefault((channels, size // divisor), []).append(f"matting{size}/stage{level}")
    if include_toy:
        for level, (channels, res) in enumerate(TOY_STAGES):
            found.setdefault((channels, res), []).append(f"toy/stage{level}")
    ordered = sorted(found.items(), key=lambda kv: -(kv[0][0] * kv[0][1] ** 2))
    return [(c, r, ",".join(where)) for (c, r), where in ordered]


def plan_shapes(matting_sizes: Iterable[int], batch_sizes: Iterable[int], max_elements: int,
                max_bytes: int, include_toy: bool = True) -> tuple[list[OpShape], list[dict[str, Any]]]:
    """Split every (shape, batch) combination into those to run and those skipped, each skip with its reason.

    Args:
        max_elements: largest N·C·R² run (the CPU time budget; `bench.op_max_elements`).
        max_bytes: skip when the estimated peak (input bytes × PEAK_OVER_INPUT) exceeds this.
    """
    run, skipped = [], []
    for batch in batch_sizes:
        for channels, size, where in stage_shapes(matting_sizes, include_toy):
            shape = OpShape(batch, channels, size, where)
            est_bytes = shape.elements * FLOAT_BYTES * PEAK_OVER_INPUT
            if est_bytes > max_bytes:
                skipped.append({**shape.as_dict(), "reason": f"estimated peak {est_bytes / 2**30:.1f} GiB > "
                                f"bench.op_max_bytes {max_bytes / 2**30:.1f} GiB"})
            elif shape.elements > max_elements:
                skipped.append({**shape.as_dict(), "reason": f"N·C·R² = {shape.elements:,} > bench.op_max_elements "
                                f"{max_elements:,} (time budget of this profile)"})
            else:
                run.append(shape)
    return run, skipped
