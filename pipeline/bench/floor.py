"""Where an A2U training step spends its time: the share of the generator's correlations and of the reassembly.

The A2U operators label their work with `torch.profiler.record_function` ranges (models/ops, `PROFILE_LABELS`):
`a2u::correlation` (the u/v depthwise correlations, forward and backward), `a2u::reassembly_up` and
`a2u::reassembly_down` (the CARAFE-style up and A2D down reassembly, forward and backward). One step is run
under `torch.profiler` (CPU) after `warmup` unprofiled steps, inside a `bench::step` range, and each label's
inclusive CPU time is divided by the step's. These ops are the memory-bound core of A2U that no rewrite in
PyTorch can remove, so their share says how close the rest of the code (kernel generation glue, autograd) is
to that floor. Profiling adds a per-op cost, so shares of many-small-op code are somewhat inflated; the
profiled step time is reported next to the unprofiled one.

`top_ops` lists the profile's most expensive ATen ops (self CPU time), for the closing note of a change.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from pipeline.core.logs import native_stderr_to_log

_LOG = logging.getLogger(__name__)

STEP_LABEL = "bench::step"


def profile_labels() -> dict[str, str]:
    """{label: what it covers} of the A2U ranges (from models/ops, the one place that names them)."""
    from models.ops.kernels.common import PROFILE_LABELS

    return dict(PROFILE_LABELS)


def profile_step(step: Callable[[], Any], warmup: int = 2, steps: int = 1, top: int = 15) -> dict[str, Any]:
    """Profile `steps` calls of `step` (after `warmup`); returns per-label seconds and shares, and top ops.

    Returns {"step_s": profiled seconds per step, "labels": {label: {"s": ..., "share": ...}},
    "other_share": 1 − Σ shares, "top_ops": [{"name", "self_s", "calls"}] per step}.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    for _ in range(warmup):
        step()
    with native_stderr_to_log(_LOG), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            with record_function(STEP_LABEL):
                step()
    events = {e.key: e for e in prof.key_averages()}
    if STEP_LABEL not in events:
        raise RuntimeError(f"the profile has no {STEP_LABEL!r} range")
    total = events[STEP_LABEL].cpu_time_total / 1e6 / steps
    labels = {}
    for label in profile_labels():
        seconds = events[label].cpu_time_total / 1e6 / steps if label in events else 0.0
        labels[label] = {"s": seconds, "share": seconds / total if total > 0 else float("nan")}
    return {"step_s": total, "steps": steps, "labels": labels,
            "other_share": 1.0 - sum(v["share"] for v in labels.values()),
            "top_ops": top_ops(prof, steps, top)}


def top_ops(prof: Any, steps: int = 1, top: int = 15) -> list[dict[str, Any]]:
    """The `top` ATen ops by self CPU time (seconds per step), user ranges and autograd nodes excluded."""
    rows = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    rows.sort(key=lambda e: -e.self_cpu_time_total)
    return [{"name": e.key, "self_s": e.self_cpu_time_total / 1e6 / steps, "calls": e.count // steps}
            for e in rows[:top]]


def floor_summary(profiled: dict[str, Any], step_s: float, baseline_step_s: float) -> dict[str, Any]:
    """Shares → seconds of the unprofiled step, and the step ratio if only the labelled ops were added.

    `floor_ratio` = (baseline step + labelled seconds) / baseline step: what A2U would cost over the baseline
    if everything except its correlations and reassembly were free (an approximation: the baseline's own
    interpolation/pooling are not subtracted, and shares are measured under the profiler).
    """
    labelled = sum(v["share"] for v in profiled["labels"].values()) * step_s
    return {"step_s": step_s, "baseline_step_s": baseline_step_s, "labelled_s": labelled,
            "ratio": step_s / baseline_step_s, "floor_ratio": (baseline_step_s + labelled) / baseline_step_s,
            **{f"{label}_s": v["share"] * step_s for label, v in profiled["labels"].items()}}
