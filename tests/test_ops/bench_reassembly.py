"""Manual CPU benchmark of the A2U/A2D reassembly kernels against bilinear / 2×2 avg-pool (not a test).

Times every implementation interleaved (round-robin, median of `--repeats`) at the matting-network shapes, so the
ratios are measured side by side on a shared, noisy machine. `--baseline FILE` adds another implementation to
the same rounds: a file defining `up_forward`, `A2UUpsampleFunction`, `down_forward` and `A2DDownsampleFunction`,
e.g. the single-file kernels before the split into `models/ops/kernels/`
(`git show 4a2e2e9:models/ops/reassembly_fused.py > /tmp/old_fused.py`).

    .venv/bin/python -m tests.test_ops.bench_reassembly --threads 1 --clock cpu --repeats 7 \\
        [--baseline /tmp/old_fused.py]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from types import ModuleType, SimpleNamespace
from typing import Callable

import torch
import torch.nn.functional as F

from models.ops import kernels as K
from models.ops.kernels import down, up

#: The current kernels under the attribute names `--baseline` files use.
CURRENT = SimpleNamespace(up_forward=up.up_forward, A2UUpsampleFunction=up.ReassembleUpFunction,
                          down_forward=down.down_forward, A2DDownsampleFunction=down.A2DDownsampleFunction)

#: (name, N, C, low-res side) for A2U (s=3, ×2) and (name, N, C, high-res side) for A2D (k=6).
UP_SHAPES = [("C256 32→64", 1, 256, 32), ("C256 32→64 N16", 16, 256, 32), ("C128 64→128", 1, 128, 64),
             ("C128 64→128 N16", 16, 128, 64), ("C64 128→256", 1, 64, 128), ("C64 256→512", 1, 64, 256)]
DOWN_SHAPES = [("C64 512→256", 1, 64, 512), ("C64 256→128", 1, 64, 256), ("C128 128→64", 1, 128, 128),
               ("C256 64→32", 1, 256, 64), ("C256 64→32 N16", 16, 256, 64)]
UNFOLD_MAX_ELEMENTS = 2 ** 22  # skip the memory-hungry unfold reference above N·C·H·W of the output


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_fused", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _fwd_bwd(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, k: torch.Tensor,
             grad: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        xr, kr = x.detach().requires_grad_(), k.detach().requires_grad_()
        fn(xr, kr).backward(grad)
    return run


def _fwd(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, k: torch.Tensor
         ) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn(x, k)
    return run


CLOCK = time.perf_counter


def _medians(cases: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    for run in cases.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, run in cases.items():
            start = CLOCK()
            run()
            times[name].append(CLOCK() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _extra_memory(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, k: torch.Tensor,
                  out_bytes: int) -> str:
    """Peak tensor bytes of a no-grad call beyond its output, as a multiple of the output ('-' if untracked)."""
    try:
        from pipeline.bench.memory import peak_memory_cpu
    except ImportError:
        return "-"
    with torch.no_grad():
        peak = peak_memory_cpu(lambda: fn(x, k)).peak_bytes
    return f"{(peak - out_bytes) / out_bytes:.2f}"


def _up_impls(module: ModuleType) -> tuple[Callable, Callable]:
    return (lambda x, k: module.up_forward(x, k, 3, 1, 2),
            lambda x, k: module.A2UUpsampleFunction.apply(x, k, 3, 1, 2))


def _down_impls(module: ModuleType) -> tuple[Callable, Callable]:
    return (lambda x, k: module.down_forward(x, k, 6, 1),
            lambda x, k: module.A2DDownsampleFunction.apply(x, k, 6, 1))


def _section(title: str, shapes, kernel_channels: int, scale: float, reference: Callable,
             impls_of: Callable[[ModuleType], tuple[Callable, Callable]], unfold: Callable,
             impls: dict[str, ModuleType], repeats: int, gen: torch.Generator) -> None:
    """One table: each (name, n, c, side) shape; kernels and outputs are `scale`× the input side."""
    print(f"{title} | " + " | ".join(f"{n} fwd, {n} f+b, {n} extra mem/out" for n in impls)
          + " | unfold/new fwd | reference ms")
    for name, n, c, side in shapes:
        out_side = int(side * scale)
        x = torch.randn(n, c, side, side, generator=gen)
        k = torch.softmax(torch.randn(n, kernel_channels, out_side, out_side, generator=gen), 1)
        grad = torch.randn(n, c, out_side, out_side, generator=gen)
        cases = {"ref": _fwd(reference, x, k),
                 "ref_fb": _fwd_bwd(lambda a, b: reference(a, b) * 1.0, x, k, grad)}
        impl_fns = {key: impls_of(module) for key, module in impls.items()}
        for key, (f, fb) in impl_fns.items():
            cases[key], cases[key + "_fb"] = _fwd(f, x, k), _fwd_bwd(fb, x, k, grad)
        if grad.numel() <= UNFOLD_MAX_ELEMENTS:
            cases["unfold"] = _fwd(unfold, x, k)
        t = _medians(cases, repeats)
        mem = {key: _extra_memory(fns[0], x, k, grad.numel() * grad.element_size())
               for key, fns in impl_fns.items()}
        cols = " | ".join(f"{t[key] / t['ref']:.2f} | {t[key + '_fb'] / t['ref_fb']:.2f} | {mem[key]}"
                          for key in impls)
        unfold_ratio = f"{t['unfold'] / t['new']:.1f}" if "unfold" in t else "-"
        print(f"{name:18s} | {cols} | {unfold_ratio} | {1e3 * t['ref']:.2f}")


def bench(repeats: int, baseline: ModuleType | None, only: str) -> None:
    gen = torch.Generator().manual_seed(0)
    print(f"threads={torch.get_num_threads()} clock={CLOCK.__name__}  "
          f"ratios = time / reference time (median of {repeats})")
    impls = {"new": CURRENT} | ({"old": baseline} if baseline is not None else {})
    if only in ("all", "up"):
        _section("A2U vs bilinear", UP_SHAPES, 9, 2,
                 lambda a, _k: F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=False),
                 _up_impls, lambda a, b: K.reassemble_up_unfold(a, b, 3), impls, repeats, gen)
    if only in ("all", "down"):
        _section("A2D vs avgpool ", DOWN_SHAPES, 36, 0.5, lambda a, _k: F.avg_pool2d(a, 2),
                 _down_impls, lambda a, b: K.a2d_downsample_unfold(a, b, 6), impls, repeats, gen)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: keep the default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", default=None, help="path of another kernels file to compare (module docstring)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: perf_counter; cpu: process CPU time (robust on a loaded machine, 1 thread)")
    parser.add_argument("--only", choices=("all", "up", "down"), default="all")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    bench(args.repeats, _load(args.baseline) if args.baseline else None, args.only)


if __name__ == "__main__":
    main()
