"""The bench stage's DVC metrics `results/bench/ratios/<ratio>.json`: the headline time ratios, nothing else.

`bench_metrics` gives {"up_x": 6.48, "down_x": 64.5, "net_x": 1.21, "toy_step_x": 2.35, "mat_step_x": 1.28};
`metric_files` writes each as one small file with the single key `a2u_x` (`up.json` = {"a2u_x": 6.48}, ...),
so `dvc metrics show` lists the ratios as rows of one column and stays narrow however many ratios there are.

- `up_x`: A2U upsampler forward time ÷ `F.interpolate(bilinear)`, worst over the matting shapes;
- `down_x`: A2D downsampler forward time (kernel generation included) ÷ 2×2 average pooling, likewise;
- `net_x`: matting network forward time with A2U ÷ with bilinear at 1024² (absent when not measured);
- `toy_step_x`, `mat_step_x`: one training step (forward, loss, backward, optimiser) with A2U ÷ with bilinear,
  1 thread: the toy network at batch 20 and the matting network at crop 64, batch 4 (issue targets 2.0, 1.1).

These are the ratios the performance targets are stated in (`details/targets.json` has all of them with their
limits); absolute times, memory and every other shape stay in `details/` (ops.json, networks.json).
"""
from __future__ import annotations

from typing import Any

from pipeline.bench.ops import summarise_ratios
from pipeline.bench.targets import headline_ratios

#: bench_metrics key -> file name (without .json) under the metrics folder; each file holds {METRIC_KEY: ratio}.
RATIO_FILES = {"up_x": "up", "down_x": "down", "net_x": "net_1024", "toy_step_x": "toy_step", "mat_step_x": "mat_step"}
METRIC_KEY = "a2u_x"

#: Network input size of the `net_x` ratio (the size of the network performance target).
NETWORK_SIZE = 1024


#: metrics.json key -> `targets.headline_ratios` key of the training-step ratios shown as headlines.
STEP_HEADLINES = {"toy_step_x": "toy_step_b20_t1", "mat_step_x": "matting_step_crop64_b4_t1"}


def bench_metrics(ops: dict[str, Any], nets: dict[str, Any] | None, operator: str = "a2u",
                  targets: dict[str, Any] | None = None) -> dict[str, float]:
    """The headline ratios of one bench run (keys absent when their measurement did not run)."""
    worst = summarise_ratios(ops.get("shapes", []), operator, "matting")
    out = {key: round(float(worst[mode]), 4) for key, mode in (("up_x", "up_fwd"), ("down_x", "down_fwd"))
           if mode in worst}
    for item in (nets or {}).get("sizes", []):
        ratio = item.get("variants", {}).get(operator, {}).get("time_ratio_vs_bilinear")
        if item.get("size") == NETWORK_SIZE and ratio is not None:
            out["net_x"] = round(float(ratio), 4)
    steps = headline_ratios(targets or {})
    for key, source in STEP_HEADLINES.items():
        if steps.get(source) is not None:
            out[key] = round(float(steps[source]), 4)
    return out


def metric_files(headline: dict[str, float]) -> dict[str, dict[str, float]]:
    """{'<ratio>.json': {'a2u_x': value}} for each headline ratio that was measured (see RATIO_FILES)."""
    return {f"{RATIO_FILES[key]}.json": {METRIC_KEY: value} for key, value in headline.items()}

