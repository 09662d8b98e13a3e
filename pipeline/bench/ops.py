"""Benchmark every operator pair at one shape: forward and forward+backward of `down` and of `up`.

Four measurements per operator and shape (batch N, channels C, high resolution R):

- `down_fwd`: `pair.down(x)` on x: N×C×R×R under no_grad (for A2U this includes generating both kernels);
- `down_fwdbwd`: the same plus backward into x from the low-resolution output *and* from every float tensor
  in the state (so the generator's up-kernel branch is differentiated too, as in training);
- `up_fwd`: `pair.up(z, state)` with z the detached down output (N×C·f×R/2×R/2) under no_grad;
- `up_fwdbwd`: the same plus backward into z and into the state's float tensors (e.g. A2U kernels).

Two baselines are measured in the same round-robin: `F.interpolate(bilinear)` for the upsamplers and
`F.avg_pool2d(2)` for the downsamplers; each operator's `ratio` is its median over the baseline's median.
Modules run in eval mode. Peak memory uses `pipeline.bench.memory` (one untimed run that also warms up).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from pipeline.bench.memory import peak_memory
from pipeline.bench.shapes import OpShape
from pipeline.bench.timing import interleaved_medians, timer_for

UP_BASELINE = "F.interpolate(bilinear)"
DOWN_BASELINE = "F.avg_pool2d(2)"
MODES = ("down_fwd", "down_fwdbwd", "up_fwd", "up_fwdbwd")
PairFactory = Callable[[str, int], nn.Module]


class _BaselinePair(nn.Module):
    """2×2 average pooling down, bilinear ×2 up: the ratio bases, shaped like an operator pair."""

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return F.avg_pool2d(x, 2), None

    def up(self, z: torch.Tensor, state: Any) -> torch.Tensor:
        return F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)


def _leaf_like(value: Any) -> Any:
    """A detached copy that requires grad for float tensors; anything else (indices, None) passes through."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().clone().requires_grad_(True)
    return value


def _float_tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _backward_all(outputs: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
    pairs = [(o, g) for o, g in zip(outputs, grads) if o.requires_grad]
    if not pairs:
        raise RuntimeError("forward+backward case has no output that requires grad")
    torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])


def make_cases(pair: nn.Module, x: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """The four zero-argument callables (see module docstring) for one pair on input `x`."""
    with torch.no_grad():
        low, state = pair.down(x)
        y = pair.up(low, state)
    down_grads = [torch.ones_like(t) for t in [low, *_float_tensors(state)]]
    up_grad = torch.ones_like(y)
    x_leaf = x.detach().clone().requires_grad_(True)
    z_leaf, state_leaf = _leaf_like(low), tree_map(_leaf_like, state)

    def down_fwd() -> Any:
        with torch.no_grad():
            return pair.down(x)

    def down_fwdbwd() -> None:
        x_leaf.grad = None
        out, st = pair.down(x_leaf)
        _backward_all([out, *_float_tensors(st)], down_grads)

    def up_fwd() -> Any:
        with torch.no_grad():
            return pair.up(low, state)

    def up_fwdbwd() -> None:
        for t in [z_leaf, *_float_tensors(state_leaf)]:
            t.grad = None
        _backward_all([pair.up(z_leaf, state_leaf)], [up_grad])

    return {"down_fwd": down_fwd, "down_fwdbwd": down_fwdbwd, "up_fwd": up_fwd, "up_fwdbwd": up_fwdbwd}


def bench_shape(shape: OpShape, operators: list[str], factory: PairFactory, repeats: int,
                device: torch.device | str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Time and measure every operator (plus the two baselines) at one shape.

    Returns `{"shape": {...}, "results": {operator: {mode: {median_s, samples_s, peak_bytes, ratio}}}}`, where
    the baselines appear under UP_BASELINE (up modes) and DOWN_BASELINE (down modes).
    """
    torch.manual_seed(seed)
    x = torch.randn(shape.batch, shape.channels, shape.size, shape.size, device=device)
    pairs: dict[str, nn.Module] = {"__baseline__": _BaselinePair()}
    for name in operators:
        torch.manual_seed(seed)
        pairs[name] = factory(name, shape.channels).to(device).eval()
    cases = {name: make_cases(pair, x) for name, pair in pairs.items()}
    timer = timer_for(device)
    results: dict[str, dict[str, Any]] = {name: {} for name in operators}
    results[UP_BASELINE], results[DOWN_BASELINE] = {}, {}
    for mode in MODES:
        base_name = DOWN_BASELINE if mode.startswith("down") else UP_BASELINE
        per_mode = {name: cases[name][mode] for name in pairs}
        memory = {name: peak_memory(fn, device) for name, fn in per_mode.items()}
        timings = interleaved_medians(per_mode, repeats, timer=timer, warmup=0)
        base_median = timings["__baseline__"].median_s
        for name in pairs:
            entry = {**timings[name].as_dict(), "peak_bytes": memory[name].peak_bytes}
            entry["ratio"] = entry["median_s"] / base_median if base_median > 0 else float("nan")
            results[base_name if name == "__baseline__" else name][mode] = entry
    return {"shape": shape.as_dict(), "memory_method": memory["__baseline__"].method, "results": results}


def default_pair_factory() -> PairFactory:
    """`models.ops.pairs.build_pair` (importing `models` registers every operator)."""
    import models  # noqa: F401  (registers operators)
    from models.ops.pairs import build_pair

    return lambda name, channels: build_pair(name, channels=channels)


def registered_operators() -> list[str]:
    """Registered pair names, in the table order of PAIR_NAMES first, then any others."""
    import models  # noqa: F401
    from models.ops.pairs import PAIR_NAMES
    from models.registry import OPERATOR_PAIRS

    known = list(OPERATOR_PAIRS.module_dict)
    return [n for n in PAIR_NAMES if n in known] + sorted(n for n in known if n not in PAIR_NAMES)


def default_operators() -> list[str]:
    """The operators timed when `bench.operators` is null: the nine pairs of PAIR_NAMES, then A2U's six
    successors (SUCCESSOR_PAIR_NAMES); the ablation pairs of `ABLATION_PAIR_NAMES` would double the operator
    tables: they are timed when named."""
    import models  # noqa: F401
    from models.ops.pairs import PAIR_NAMES, SUCCESSOR_PAIR_NAMES

    known = registered_operators()
    return [n for n in known if n in PAIR_NAMES] + [n for n in SUCCESSOR_PAIR_NAMES if n in known]


def summarise_ratios(shape_results: list[dict[str, Any]], operator: str,
                     where_prefix: str = "matting") -> dict[str, float]:
    """Worst (largest) ratio per mode of `operator` over the shapes whose `where` mentions `where_prefix`."""
    worst: dict[str, float] = {}
    for item in shape_results:
        if where_prefix not in item["shape"]["where"] or operator not in item["results"]:
            continue
        for mode, entry in item["results"][operator].items():
            worst[mode] = max(worst.get(mode, 0.0), float(entry["ratio"]))
    return worst
