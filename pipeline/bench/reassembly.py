"""The A2U/A2D reassembly kernels alone: the fast implementation vs the unfold formulation (spec §2.3–2.4).

At one shape (N, C, R) the upsampling case reassembles Y: N×C×R/2×R/2 with softmax-normalised kernels
K_u: N×s²×R×R (s=3), and the downsampling case reassembles X: N×C×R×R with K_d: N×(2s)²×R/2×R/2. Each
implementation is timed interleaved with the others and with the plain baseline (bilinear / 2×2 avg-pool),
and its *extra* memory is reported: peak tensor bytes created by the call minus its output bytes (the
inputs and kernels exist before the call), so 0 means "writes the output and nothing else". Targets:
fast ≥ 10× faster than unfold, extra ≤ 1× the output. A max-abs difference to the unfold result checks
that the fast path is computing the same thing at the benchmarked shape.

On CPU, `a2u_upsample` / `a2d_downsample` run the fused C++ op when it is built (`models.ops.kernels.fused_cpu`;
the `backend` of each item says which ran). Then the pure-PyTorch kernels are timed too, in the same
round-robin, as `a2u_upsample_eager` / `a2d_downsample_eager` (under `fused_cpu.fallback()`), and
`fused_vs_eager` holds the fused and eager medians and the speed-up (eager / fused) for the forward (from the
same round) and for forward+backward (both gradients, timed interleaved with each other).
"""
from __future__ import annotations

import contextlib
import importlib
import warnings
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from pipeline.bench.memory import peak_memory
from pipeline.bench.shapes import OpShape
from pipeline.bench.timing import interleaved_medians, timer_for

UP_KERNEL = 3
DOWN_KERNEL = 6
Reassemble = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Where the operator engineer's functions may live, and the names tried in order.
_MODULES = ("models.ops.kernels",)
_NAMES = {"up": ("a2u_upsample",), "up_unfold": ("reassemble_up_unfold",),
          "down": ("a2d_downsample",), "down_unfold": ("a2d_downsample_unfold",),
          "up_plain": ("reassemble_up_plain",), "down_plain": ("a2d_downsample_plain",)}
_OPTIONAL = ("up_plain", "down_plain")
#: The names of the fused op (default dispatch on CPU) and of the pure-PyTorch kernels timed beside it.
FUSED_NAMES = {"up": "a2u_upsample", "down": "a2d_downsample"}
EAGER_NAMES = {"up": "a2u_upsample_eager", "down": "a2d_downsample_eager"}
BACKEND_LABELS = {"fused-cpp": "fused C++ op (fused-cpp)", "eager": "pure PyTorch (eager)"}


def reassembly_backend(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Which reassembly backend eager calls on `device` use ('fused-cpp' or 'eager'), and why when eager."""
    kind = torch.device(device).type
    try:
        from models.ops.kernels import fused_cpu
    except ImportError as error:   # an older models/ops without the fused op
        return {"device": kind, "backend": "eager", "fused_built": False, "reason": f"no fused op ({error})"}
    backend, built = fused_cpu.backend(kind), fused_cpu.available()
    reason = None
    if backend != "fused-cpp":
        if kind != "cpu":
            reason = f"the fused C++ op is CPU-only; {kind} runs the pure-PyTorch kernels"
        elif not built:
            reason = fused_cpu.unavailable_reason()
        else:
            reason = f"disabled ({fused_cpu.ENV_VAR}=0 or fused_cpu.set_fused_enabled(False))"
    return {"device": kind, "backend": backend, "fused_built": built, "reason": reason}


def backend_label(info: dict[str, Any] | None) -> str:
    """'fused C++ op (fused-cpp)' or 'pure PyTorch (eager): <reason>' for a table caption."""
    if not info:
        return "unknown (not recorded)"
    label = BACKEND_LABELS.get(info.get("backend"), str(info.get("backend")))
    return label + (f": {info['reason']}" if info.get("reason") else "")


@contextlib.contextmanager
def pure_pytorch() -> Iterator[None]:
    """The pure-PyTorch reassembly kernels inside the block, without the fallback's warning."""
    from models.ops.kernels import fused_cpu

    with fused_cpu.fallback(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="a2u: fused CPU reassembly disabled", category=RuntimeWarning)
        yield


def _eager(fn: Callable[..., torch.Tensor]) -> Reassemble:
    def run(feat: torch.Tensor, kernels: torch.Tensor, *args: Any) -> torch.Tensor:
        with pure_pytorch():
            return fn(feat, kernels, *args)
    return run


def find_reassembly_functions() -> dict[str, Callable[..., torch.Tensor]]:
    """Locate the operator functions in models/ops; a missing one raises ImportError naming what was tried."""
    found: dict[str, Callable[..., torch.Tensor]] = {}
    for role, names in _NAMES.items():
        for module_name in _MODULES:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError:
                continue
            fn = next((getattr(module, n) for n in names if hasattr(module, n)), None)
            if fn is not None:
                found[role] = fn
                break
        if role not in found and role not in _OPTIONAL:
            raise ImportError(f"no reassembly function for {role!r}: tried {names} in {_MODULES}")
    return found


def standard_implementations(functions: dict[str, Callable[..., torch.Tensor]] | None = None
                             ) -> tuple[dict[str, Reassemble], dict[str, Reassemble]]:
    """(upsamplers, downsamplers) name -> f(features, kernels), from models/ops plus the two baselines."""
    fns = functions or find_reassembly_functions()
    up = {"a2u_upsample": lambda y, k: fns["up"](y, k, UP_KERNEL),
          "a2u_upsample_unfold": lambda y, k: fns["up_unfold"](y, k, UP_KERNEL),
          "F.interpolate(bilinear)": lambda y, k: F.interpolate(y, scale_factor=2, mode="bilinear",
                                                                align_corners=False)}
    down = {"a2d_downsample": lambda x, k: fns["down"](x, k, DOWN_KERNEL),
            "a2d_downsample_unfold": lambda x, k: fns["down_unfold"](x, k, DOWN_KERNEL),
            "F.avg_pool2d(2)": lambda x, k: F.avg_pool2d(x, 2)}
    if "up_plain" in fns:  # the export path (out-of-place), worth knowing its cost too
        up["a2u_upsample_plain"] = lambda y, k: fns["up_plain"](y, k, UP_KERNEL)
    if "down_plain" in fns:
        down["a2d_downsample_plain"] = lambda x, k: fns["down_plain"](x, k, DOWN_KERNEL)
    return up, down


def _inputs(shape: OpShape, device: torch.device | str, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n, c, r = shape.batch, shape.channels, shape.size

    def rand(*dims: int) -> torch.Tensor:
        return torch.randn(*dims, generator=gen).to(device)

    return {"y_low": rand(n, c, r // 2, r // 2), "k_up": rand(n, UP_KERNEL ** 2, r, r).softmax(1),
            "x_high": rand(n, c, r, r), "k_down": rand(n, DOWN_KERNEL ** 2, r // 2, r // 2).softmax(1)}


def _measure(impls: dict[str, Reassemble], feat: torch.Tensor, kernels: torch.Tensor, reference: str,
             repeats: int, device: torch.device | str) -> dict[str, Any]:
    cases = {name: (lambda f=fn: f(feat, kernels)) for name, fn in impls.items()}
    with torch.no_grad():
        outputs = {name: fn() for name, fn in cases.items()}
        memory = {name: peak_memory(fn, device) for name, fn in cases.items()}
        timings = interleaved_medians(cases, repeats, timer=timer_for(device), warmup=0)
    ref_out = outputs[reference]
    result: dict[str, Any] = {}
    for name in impls:
        out_bytes = outputs[name].numel() * outputs[name].element_size()
        extra = memory[name].peak_bytes - out_bytes
        result[name] = {**timings[name].as_dict(), "peak_bytes": memory[name].peak_bytes, "output_bytes": out_bytes,
                        "extra_bytes": extra, "extra_over_output": extra / out_bytes}
        if name != reference and outputs[name].shape == ref_out.shape:
            result[name]["max_abs_diff_vs_unfold"] = float((outputs[name] - ref_out).abs().max())
    ref_time = result[reference]["median_s"]
    for name in impls:
        result[name]["speedup_vs_unfold"] = ref_time / result[name]["median_s"]
    return result


def _measure_fwdbwd(impls: dict[str, Reassemble], feat: torch.Tensor, kernels: torch.Tensor, repeats: int,
                    device: torch.device | str, seed: int) -> dict[str, Any]:
    """Forward + backward into the features and the kernels, the implementations interleaved."""
    with torch.no_grad():
        grad_shape = next(iter(impls.values()))(feat, kernels).shape
    grad = torch.randn(grad_shape, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    cases = {}
    for name, fn in impls.items():
        f, k = feat.detach().clone().requires_grad_(), kernels.detach().clone().requires_grad_()

        def case(fn: Reassemble = fn, f: torch.Tensor = f, k: torch.Tensor = k) -> None:
            f.grad = k.grad = None
            fn(f, k).backward(grad)
        cases[name] = case
    timings = interleaved_medians(cases, repeats, timer=timer_for(device), warmup=1)
    return {name: timings[name].as_dict() for name in impls}


def _fused_vs_eager(forward: dict[str, Any], fwdbwd: dict[str, Any], direction: str) -> dict[str, Any]:
    fused, eager = FUSED_NAMES[direction], EAGER_NAMES[direction]
    out = {}
    for mode, timings in (("fwd", forward), ("fwdbwd", fwdbwd)):
        f, e = timings[fused]["median_s"], timings[eager]["median_s"]
        out[mode] = {"fused_median_s": f, "eager_median_s": e, "speedup": e / f if f > 0 else float("nan")}
    return out


def bench_reassembly(shape: OpShape, repeats: int, device: torch.device | str = "cpu", seed: int = 0,
                     implementations: tuple[dict[str, Reassemble], dict[str, Reassemble]] | None = None,
                     compare_eager: bool | None = None) -> dict[str, Any]:
    """Time and measure the up and down reassembly implementations at `shape` (see module docstring).

    compare_eager: also time the pure-PyTorch kernels beside the fused op (forward, and forward+backward of
        both); default: when the standard implementations run and the fused op is the backend on `device`.
    """
    backend = reassembly_backend(device)
    if compare_eager is None:
        compare_eager = implementations is None and backend["backend"] == "fused-cpp"
    up, down = implementations or standard_implementations()
    if compare_eager:
        fns = find_reassembly_functions()
        fused = {"up": lambda y, k: fns["up"](y, k, UP_KERNEL), "down": lambda x, k: fns["down"](x, k, DOWN_KERNEL)}
        eager = {"up": _eager(fused["up"]), "down": _eager(fused["down"])}
        up = {**up, FUSED_NAMES["up"]: fused["up"], EAGER_NAMES["up"]: eager["up"]}
        down = {**down, FUSED_NAMES["down"]: fused["down"], EAGER_NAMES["down"]: eager["down"]}
    data = _inputs(shape, device, seed)
    up_ref = next(n for n in up if n.endswith("_unfold"))
    down_ref = next(n for n in down if n.endswith("_unfold"))
    result = {"shape": shape.as_dict(), "backend": backend["backend"],
              "up": _measure(up, data["y_low"], data["k_up"], up_ref, repeats, device),
              "down": _measure(down, data["x_high"], data["k_down"], down_ref, repeats, device)}
    if compare_eager:
        result["fused_vs_eager"] = {}
        for direction, impls, feat, kernels in (("up", up, data["y_low"], data["k_up"]),
                                                ("down", down, data["x_high"], data["k_down"])):
            pair = {name: impls[name] for name in (FUSED_NAMES[direction], EAGER_NAMES[direction])}
            fwdbwd = _measure_fwdbwd(pair, feat, kernels, repeats, device, seed)
            result["fused_vs_eager"][direction] = _fused_vs_eager(result[direction], fwdbwd, direction)
    return result
