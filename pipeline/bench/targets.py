"""The performance targets of the bench issue, evaluated on measured results (reported, never asserted).

Every check is `{name, value, limit, met}`; `value`/`met` are None when the measurement was not run
(e.g. its shape was skipped by the budget), so a missing number is visible rather than silently passing.
"""
from __future__ import annotations

from typing import Any

from pipeline.bench.ops import summarise_ratios


def _check(name: str, value: float | None, limit: float, smaller_is_better: bool = True) -> dict[str, Any]:
    met = None if value is None else (value <= limit if smaller_is_better else value >= limit)
    return {"name": name, "value": value, "limit": f"{'≤' if smaller_is_better else '≥'} {limit}", "met": met}


def _reassembly_extreme(items: list[dict[str, Any]], direction: str, impl: str, key: str,
                        largest: bool) -> float | None:
    values = [item[direction][impl][key] for item in items if impl in item.get(direction, {})]
    if not values:
        return None
    return max(values) if largest else min(values)


def evaluate_targets(ops: dict[str, Any], nets: dict[str, Any] | None, metrics: dict[str, Any] | None,
                     operator: str = "a2u", network_size: int = 1024) -> dict[str, Any]:
    """Worst case over the matting shapes for each operator target; the network and metrics targets."""
    worst = summarise_ratios(ops["shapes"], operator, "matting")
    items = ops.get("reassembly") or []
    checks = [
        _check(f"{operator} up forward / bilinear (worst matting shape)", worst.get("up_fwd"), 3.0),
        _check(f"{operator} up fwd+bwd / bilinear (worst matting shape)", worst.get("up_fwdbwd"), 4.0),
        _check(f"{operator} down forward incl. kernel generation / avg-pool (worst)", worst.get("down_fwd"), 3.0),
        _check(f"{operator} down fwd+bwd incl. kernel generation / avg-pool (worst)", worst.get("down_fwdbwd"), 4.0),
        _check("a2u_upsample alone / bilinear (worst)", _ratio_to_base(items, "up", "a2u_upsample",
                                                                       "F.interpolate(bilinear)"), 3.0),
        _check("a2d_downsample alone / avg-pool (worst)", _ratio_to_base(items, "down", "a2d_downsample",
                                                                         "F.avg_pool2d(2)"), 3.0),
        _check("a2u_upsample speed-up vs unfold (smallest)",
               _reassembly_extreme(items, "up", "a2u_upsample", "speedup_vs_unfold", False), 10.0, False),
        _check("a2d_downsample speed-up vs unfold (smallest)",
               _reassembly_extreme(items, "down", "a2d_downsample", "speedup_vs_unfold", False), 10.0, False),
        _check("a2u_upsample extra memory / output (largest)",
               _reassembly_extreme(items, "up", "a2u_upsample", "extra_over_output", True), 1.0),
        _check("a2d_downsample extra memory / output (largest)",
               _reassembly_extreme(items, "down", "a2d_downsample", "extra_over_output", True), 1.0),
    ]
    net_entry = _network_entry(nets, network_size, operator)
    checks += [_check(f"network {operator} forward time / bilinear at {network_size}²",
                      net_entry.get("time_ratio_vs_bilinear"), 1.15),
               _check(f"network {operator} peak memory / bilinear at {network_size}²",
                      net_entry.get("memory_ratio_vs_bilinear"), 2.0)]
    for metric in ("grad", "conn"):
        value = None if metrics is None else _metric_seconds(metrics, metric)
        checks.append(_check(f"{metric} seconds per {int((metrics or {}).get('size', 800))}² image", value, 0.3))
    return {"operator": operator, "checks": checks}


def _ratio_to_base(items: list[dict[str, Any]], direction: str, impl: str, base: str) -> float | None:
    ratios = [item[direction][impl]["median_s"] / item[direction][base]["median_s"]
              for item in items if impl in item.get(direction, {}) and base in item[direction]]
    return max(ratios) if ratios else None


def _network_entry(nets: dict[str, Any] | None, size: int, variant: str) -> dict[str, Any]:
    for item in (nets or {}).get("sizes", []):
        if item["size"] == size:
            return item["variants"].get(variant, {})
    return {}


def _metric_seconds(metrics: dict[str, Any], metric: str) -> float | None:
    for key, value in metrics.items():
        if key.lower().startswith(metric):
            return float(value)
    return None
