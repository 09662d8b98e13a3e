#!/usr/bin/env python3
"""GPU readiness check of the paper recipe: operator parity, operator timings, paper-config training speed.

    python tools/gpu_check.py OUT_DIR            # one GPU, under 7 minutes; writes OUT_DIR/gpu_check.{json,md}
    python tools/gpu_check.py OUT_DIR --quick    # tiny sizes, a few iterations, CPU or GPU (the test suite)

It needs PyTorch (+ numpy) and the pure-Python wheels mmengine 0.10.7, mmcv-lite 2.1.0, addict, yapf,
platformdirs, termcolor (README: "Running the paper recipe on GPUs"); it imports this repository's `models`
and the paper config, never `pipeline`, DVC or DVCLive, and needs no network and no dataset.

Sections, each under its own time guard (a slow one is cut and recorded as `timeout`; the whole run stays
under `--budget` seconds), results rewritten after each section so a run cut short still leaves them:
1. env: versions, device, cudnn.benchmark / TF32 settings used below.
2. parity: the A2U kernel generator, A2D, A2U, the a2u pair (down + up) and the pairs of A2U's successors (FADE,
   FADE-Lite, SAPA-B, SAPA-G, DySample, DySample+: `SUCCESSOR_PAIR_NAMES`), forward and backward on the device
   against the CPU in float32 (TF32 off), max error relative to the output scale must be <= 1e-5; the bf16 and
   fp16 autocast errors against float32 are reported (not asserted). On CUDA with triton, the Triton reassembly
   ops (`models.ops.kernels.triton`, which the modules use there) are also checked directly against the CPU op.
3. ops: forward and forward+backward time (CUDA events; perf_counter on CPU) of the a2u pair's down (generator +
   A2D) against 2×2 avg-pool and max-pool and its up (reassembly) against bilinear, at matting shapes; on CUDA
   with triton, the up and down reassembly alone with the Triton kernels against the eager (pure-PyTorch) path.
4. train: the paper config's model and optimiser (crop 512, batch 16 on one GPU, Adam with the encoder at lr/100)
   stepped by MMEngine's `train_step` on synthetic random data already on the device (data loading excluded), in
   float32 as published, for bilinear and a2u: >= 100 timed iterations after a warm-up, iterations/s, peak memory
   and the projected hours for the paper's 180k iterations. cudnn.benchmark is the config's (`env_cfg`).
5. train_amp: the same with MMEngine's `AmpOptimWrapper` (bf16 autocast) — a speed reference, not the recipe.
6. successors: forward and forward+backward time of each successor's upsampler (its pair's `up`, kernel or offset
   generation included) and of a2u's up, against bilinear, at the crop-512 matting shapes (last, so a cut here
   leaves sections 1-5 whole; a case that would start after the soft deadline is recorded as not timed).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import json
import os
import platform
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

PAPER_CONFIG = REPO / "configs" / "matting" / "a2u-matting_r34_2xb8-180k_comp1k-512px_paper.py"
PAPER_ITERS = 180_000
PARITY_TOLERANCE = 1e-5
START = time.monotonic()

#: Sizes of a full run (one GPU) and of `--quick` (CPU, the test suite). Budgets are seconds per section.
FULL = dict(parity=(2, 64, 64, 64), ops=[("enc/dec stage 0 at crop 512, batch 16", 16, 64, 512),
                                          ("enc/dec stage 3 at crop 512, batch 16", 16, 256, 64),
                                          ("stage 0 of a 2048² test image", 1, 64, 2048)],
            op_warmup=2, op_repeats=7, crop=None, batch=None, warmup=10, iters=100, amp_iters=50,
            successor_ops=[("enc/dec stage 0 at crop 512, batch 16", 16, 64, 512),
                           ("enc/dec stage 3 at crop 512, batch 16", 16, 256, 64)],
            budgets=dict(env=15, parity=50, ops=70, train=160, train_amp=45, successors=60))
QUICK = dict(parity=(1, 32, 16, 16), ops=[("tiny", 1, 32, 32)], op_warmup=1, op_repeats=2, crop=32, batch=2,
             warmup=1, iters=3, amp_iters=2, successor_ops=[("tiny", 1, 32, 32)],
             budgets=dict(env=15, parity=30, ops=30, train=60, train_amp=30, successors=30))


class SectionTimeout(Exception):
    """Raised by the section's alarm when its time guard runs out."""


def elapsed() -> float:
    return time.monotonic() - START


def say(message: str) -> None:
    """One progress line with the elapsed time (so a run cut by a time limit shows where it was)."""
    print(f"[{elapsed():7.1f} s] {message}", flush=True)


def _alarm(signum: int, frame: Any) -> None:
    raise SectionTimeout()


class Report:
    """The JSON + Markdown result, rewritten (atomically) after every section."""

    def __init__(self, out_dir: Path, quick: bool) -> None:
        self.out_dir = out_dir
        self.data: dict[str, Any] = {"tool": "tools/gpu_check.py", "quick": quick,
                                     "started": _dt.datetime.now().isoformat(timespec="seconds"), "sections": {}}

    def write(self) -> None:
        self.data["elapsed_s"] = round(elapsed(), 1)
        for name, text in (("gpu_check.json", json.dumps(self.data, indent=2, default=str) + "\n"),
                           ("gpu_check.md", render_markdown(self.data))):
            tmp = self.out_dir / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.out_dir / name)


def run_section(report: Report, name: str, budget: float, deadline: float, body: Callable[[dict], None]) -> None:
    """Run `body(result)` under min(budget, time left before `deadline`) seconds; record status and time."""
    result: dict[str, Any] = {"status": "running", "budget_s": 0.0}
    report.data["sections"][name] = result
    allowed = max(1.0, min(budget, deadline - elapsed()))
    result["budget_s"] = round(allowed, 1)
    say(f"{name}: start (time guard {allowed:.0f} s)")
    signal.signal(signal.SIGALRM, _alarm)
    began = time.monotonic()
    result["soft_deadline"] = began + allowed * 0.9  # loops stop here; the alarm is the backstop
    signal.setitimer(signal.ITIMER_REAL, allowed)
    try:
        body(result)
        result["status"] = result.get("status_override", "ok")
    except SectionTimeout:
        result["status"] = "timeout"
        say(f"{name}: TIMEOUT after {time.monotonic() - began:.1f} s (partial results kept)")
    except Exception as err:  # noqa: BLE001 - a failing section must not hide the others
        result["status"] = "error"
        result["error"] = f"{type(err).__name__}: {err}"
        say(f"{name}: ERROR {result['error']}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        result.pop("soft_deadline", None)
        result.pop("status_override", None)
        result["elapsed_s"] = round(time.monotonic() - began, 1)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    say(f"{name}: {result['status']} in {result['elapsed_s']} s")
    report.write()


# ------------------------------------------------------------------------------------------------ env
def section_env(result: dict, device: torch.device, cudnn_benchmark: bool) -> None:
    import mmcv
    import mmengine
    import numpy

    result.update(python=platform.python_version(), torch=torch.__version__, mmengine=mmengine.__version__,
                  mmcv=mmcv.__version__, numpy=numpy.__version__, device=str(device),
                  cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None,
                  cudnn_benchmark=cudnn_benchmark,
                  tf32={"cudnn_conv": torch.backends.cudnn.allow_tf32,
                        "matmul": torch.backends.cuda.matmul.allow_tf32},
                  cpu_threads=torch.get_num_threads(), triton=_triton_version(),
                  reassembly_backend=_reassembly_backend(device))
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        result.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                      capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    say(f"env: torch {result['torch']}, mmengine {result['mmengine']}, mmcv {result['mmcv']}, device "
        f"{result.get('gpu', device)}, cudnn.benchmark={cudnn_benchmark}")


# ------------------------------------------------------------------------------------------------ parity
def _triton_version() -> str | None:
    """The installed triton's version, read from its metadata (triton itself is not imported)."""
    from importlib import metadata

    try:
        return metadata.version("triton")
    except metadata.PackageNotFoundError:
        return None


def _reassembly_backend(device: torch.device) -> str:
    """Which reassembly kernels eager calls on `device` run (triton is imported only for a CUDA device)."""
    from models.ops.kernels import fused_cpu
    from models.ops.kernels import triton as triton_kernels

    return fused_cpu.backend("cpu") if device.type == "cpu" else triton_kernels.backend(device.type)


def _triton_skip_reason(device: torch.device) -> str | None:
    """None when the Triton reassembly kernels run on `device`, else why not."""
    from models.ops.kernels import triton as triton_kernels

    if device.type != "cuda":
        return "the Triton kernels run on CUDA only"
    return None if triton_kernels.available() else triton_kernels.unavailable_reason()


def _reassembly_inputs(device: torch.device, n: int, c: int, h: int, seed: int = 2) -> dict[str, torch.Tensor]:
    """x N×C×h×h (low-res, for up) with softmaxed 3×3 kernels N×9×2h×2h, X N×C×2h×2h with 6×6 kernels N×36×h×h."""
    gen = torch.Generator().manual_seed(seed)
    return {name: t.to(device) for name, t in dict(
        x=torch.randn(n, c, h, h, generator=gen),
        ku=torch.randn(n, 9, 2 * h, 2 * h, generator=gen).softmax(1),
        xd=torch.randn(n, c, 2 * h, 2 * h, generator=gen),
        kd=torch.randn(n, 36, h, h, generator=gen).softmax(1)).items()}


def _reassembly_ops() -> dict[str, tuple[Callable[..., torch.Tensor], str, str]]:
    """name -> (op(x, kernels), input key, kernels key) of the public reassembly ops, as the modules call them."""
    from models.ops import kernels as K

    return {"up": (lambda a, b: K.reassemble_up(a, b, 3), "x", "ku"),
            "down": (lambda a, b: K.a2d_downsample(a, b, 6), "xd", "kd")}


def _triton_parity(device: torch.device, shape: tuple[int, int, int, int]) -> dict:
    """The reassembly ops on `device` with the Triton kernels against the CPU op (fused C++ when built), fp32:
    output, grad_x and grad_K, relative to max(1, max |CPU|)."""
    reason = _triton_skip_reason(device)
    if reason is not None:
        return {"status": "skipped", "reason": reason}
    from models.ops.kernels import fused_cpu

    n, c, h, _ = shape
    inputs, checks = _reassembly_inputs(torch.device("cpu"), n, c, h // 2), []
    for name, (op, xk, kk) in _reassembly_ops().items():
        ref = _op_value_and_grads(op, inputs[xk], inputs[kk])
        got = _op_value_and_grads(op, inputs[xk].to(device), inputs[kk].to(device))
        error = _relative_error([t.cpu() for t in got], ref)
        checks.append({"op": name, "cpu_backend": fused_cpu.backend("cpu"), "fp32_error": error,
                       "fp32_ok": error <= PARITY_TOLERANCE})
        say(f"parity: triton reassembly {name}: fp32 error {error:.2e} vs CPU {fused_cpu.backend('cpu')}")
    return {"status": "ok" if all(c["fp32_ok"] for c in checks) else "failed", "checks": checks}


def _op_value_and_grads(op: Callable[..., torch.Tensor], x: torch.Tensor, kernels: torch.Tensor
                        ) -> list[torch.Tensor]:
    x, kernels = x.detach().clone().requires_grad_(True), kernels.detach().clone().requires_grad_(True)
    out = op(x, kernels)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(out.device)
    return [out.detach(), *torch.autograd.grad(out, (x, kernels), grad)]


def _successors() -> tuple[str, ...]:
    from models.ops.pairs import SUCCESSOR_PAIR_NAMES

    return tuple(SUCCESSOR_PAIR_NAMES)


def _parity_modules(channels: int) -> dict[str, torch.nn.Module]:
    from models.ops.a2u import A2D, A2U, A2UKernelGenerator
    from models.ops.pairs import build_pair

    torch.manual_seed(0)
    modules = {"generator": A2UKernelGenerator(channels), "A2D": A2D(channels), "A2U (self-guided)": A2U(channels),
               "a2u pair (down+up)": build_pair("a2u", channels)}
    for name in _successors():
        modules[f"{name} pair (down+up)"] = build_pair(name, channels)
    return modules


def _forward(name: str, module: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    if name == "generator":
        return list(module(x))
    if name.endswith(" pair (down+up)"):
        low, state = module.down(x)
        return [low, module.up(low, state)]
    return [module(x)]


def _run_parity(name: str, module: torch.nn.Module, x: torch.Tensor, grads: list[torch.Tensor] | None
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    x = x.clone().requires_grad_(True)
    outs = _forward(name, module, x)
    grads = grads or [torch.randn(o.shape, generator=torch.Generator().manual_seed(i)) for i, o in enumerate(outs)]
    torch.autograd.backward(outs, [g.to(o.device, o.dtype) for g, o in zip(grads, outs)])
    params = [p.grad.detach().cpu() for p in module.parameters() if p.grad is not None]
    return [o.detach().cpu().float() for o in outs], [x.grad.detach().cpu()] + params, grads


def _relative_error(got: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    worst = 0.0
    for a, b in zip(got, ref):
        scale = max(1.0, b.abs().max().item())
        worst = max(worst, (a.float() - b.float()).abs().max().item() / scale)
    return worst


def section_parity(result: dict, device: torch.device, shape: tuple[int, int, int, int]) -> None:
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # exact fp32 on the GPU
    result.update(shape=list(shape), tolerance=PARITY_TOLERANCE, reference="CPU float32", checks=[],
                  note="max |device - CPU| / max(1, max |CPU|) over outputs, input grad and parameter grads; "
                       "TF32 off. Autocast rows: the autocast output against the device's float32 output.")
    try:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        failed = False
        for name, module in _parity_modules(shape[1]).items():
            ref_out, ref_grad, grads = _run_parity(name, module, x, None)
            moved = copy.deepcopy(module).to(device)
            out, grad, _ = _run_parity(name, moved, x.to(device), grads)
            error = max(_relative_error(out, ref_out), _relative_error(grad, ref_grad))
            row: dict[str, Any] = {"module": name, "fp32_error": error, "fp32_ok": error <= PARITY_TOLERANCE}
            failed |= not row["fp32_ok"]
            for dtype in (torch.bfloat16, torch.float16):
                try:
                    with torch.no_grad(), torch.autocast(device.type, dtype=dtype):
                        low = [o.float().cpu() for o in _forward(name, moved, x.to(device))]
                    row[f"{str(dtype)[6:]}_autocast_error"] = _relative_error(low, out)
                except Exception as err:  # noqa: BLE001 - an unsupported autocast dtype is a result, not a crash
                    row[f"{str(dtype)[6:]}_autocast_error"] = f"{type(err).__name__}: {str(err)[:120]}"
            result["checks"].append(row)
            say(f"parity: {name}: fp32 error {error:.2e} ({'ok' if row['fp32_ok'] else 'FAIL'}), bf16 "
                f"{_fmt(row['bfloat16_autocast_error'])}, fp16 {_fmt(row['float16_autocast_error'])}")
        result["triton"] = _triton_parity(device, shape)
        failed |= result["triton"]["status"] == "failed"
        result["all_fp32_ok"] = not failed
        if failed:
            result["status_override"] = "failed"
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ------------------------------------------------------------------------------------------------ ops
def _timer(device: torch.device, fn: Callable[[], Any], warmup: int, repeats: int, soft_deadline: float
           ) -> float | None:
    """Median milliseconds of `fn` (CUDA events on a GPU, perf_counter on the CPU); None when out of time."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if times and time.monotonic() > soft_deadline:
            break
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            begin_s = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin_s) * 1e3)
    return statistics.median(times) if times else None


def section_ops(result: dict, device: torch.device, shapes: list, warmup: int, repeats: int) -> None:
    import torch.nn.functional as F

    from models.ops.pairs import build_pair

    result.update(timer="CUDA events" if device.type == "cuda" else "time.perf_counter", unit="ms (median)",
                  rows=[], note="x: N×C×H×W high-resolution feature; down: H -> H/2; up: H/2 -> H (a2u up with "
                                "the kernels its down predicted). fwd+bwd: forward, then backward of the sum.")
    for label, n, c, h in shapes:
        torch.manual_seed(0)
        pair = build_pair("a2u", c).to(device)
        x = torch.randn(n, c, h, h, device=device)
        z = torch.randn(n, c, h // 2, h // 2, device=device)
        with torch.no_grad():
            _, state = pair.down(x)

        def a2u_down() -> Any:
            return pair.down(x)[0]

        def a2u_up() -> Any:
            return pair.up(z, state)

        cases = {"a2u down (generator + A2D)": a2u_down, "avg-pool 2×2": lambda: F.avg_pool2d(x, 2),
                 "max-pool 2×2": lambda: F.max_pool2d(x, 2), "a2u up (reassembly)": a2u_up,
                 "bilinear ×2": lambda: F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)}
        row: dict[str, Any] = {"shape": label, "n": n, "c": c, "h": h}
        for case, fn in cases.items():
            with torch.no_grad():
                row[f"{case} fwd"] = _timer(device, fn, warmup, repeats, result["soft_deadline"])

            def fwd_bwd(fn=fn) -> None:
                x.requires_grad_(True)
                z.requires_grad_(True)
                fn().sum().backward()
                x.grad = z.grad = None
                x.requires_grad_(False)
                z.requires_grad_(False)

            row[f"{case} fwd+bwd"] = _timer(device, fwd_bwd, warmup, repeats, result["soft_deadline"])
        row.update(_triton_timings(device, n, c, h, warmup, repeats, result["soft_deadline"]))
        for kind in ("fwd", "fwd+bwd"):
            down, up = row[f"a2u down (generator + A2D) {kind}"], row[f"a2u up (reassembly) {kind}"]
            row[f"down ratio vs avg-pool {kind}"] = _ratio(down, row[f"avg-pool 2×2 {kind}"])
            row[f"up ratio vs bilinear {kind}"] = _ratio(up, row[f"bilinear ×2 {kind}"])
        result["rows"].append(row)
        say(f"ops: {label} (N={n}, C={c}, H={h}): a2u down {_fmt(row['a2u down (generator + A2D) fwd+bwd'])} ms "
            f"vs avg-pool {_fmt(row['avg-pool 2×2 fwd+bwd'])} ms; a2u up {_fmt(row['a2u up (reassembly) fwd+bwd'])} "
            f"ms vs bilinear {_fmt(row['bilinear ×2 fwd+bwd'])} ms (fwd+bwd)")


def _triton_timings(device: torch.device, n: int, c: int, h: int, warmup: int, repeats: int,
                    soft_deadline: float) -> dict[str, Any]:
    """The up (3×3, h/2 -> h) and down (6×6, h -> h/2) reassembly alone, Triton kernels against the eager
    pure-PyTorch path on the same inputs (kernels requiring grad, as in training); {} when Triton does not run."""
    if _triton_skip_reason(device) is not None:
        return {}
    from models.ops.kernels import triton as triton_kernels

    inputs, row = _reassembly_inputs(device, n, c, h // 2), {}
    for name, (op, xk, kk) in _reassembly_ops().items():
        x, kernels = inputs[xk], inputs[kk].requires_grad_(True)

        def fwd_bwd(op=op, x=x, kernels=kernels) -> None:
            x.requires_grad_(True)
            op(x, kernels).sum().backward()
            x.grad = kernels.grad = None
            x.requires_grad_(False)

        for backend, context in (("triton", contextlib.nullcontext), ("eager", triton_kernels.disabled)):
            with context():
                with torch.no_grad():
                    row[f"reassembly {name} {backend} fwd"] = _timer(device, lambda op=op, x=x, k=kernels: op(x, k),
                                                                     warmup, repeats, soft_deadline)
                row[f"reassembly {name} {backend} fwd+bwd"] = _timer(device, fwd_bwd, warmup, repeats,
                                                                     soft_deadline)
        for kind in ("fwd", "fwd+bwd"):
            row[f"{name} triton speedup vs eager {kind}"] = _ratio(row[f"reassembly {name} eager {kind}"],
                                                                   row[f"reassembly {name} triton {kind}"])
    say(f"ops: triton reassembly (N={n}, C={c}, H={h}) speedup vs eager fwd+bwd: up "
        f"{_fmt(row['up triton speedup vs eager fwd+bwd'])}, down {_fmt(row['down triton speedup vs eager fwd+bwd'])}")
    return row


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def section_successors(result: dict, device: torch.device, shapes: list, warmup: int, repeats: int) -> None:
    """Forward and forward+backward times of each successor's `up` (and a2u's) against bilinear ×2."""
    import torch.nn.functional as F

    from models.ops.pairs import build_pair

    result.update(timer="CUDA events" if device.type == "cuda" else "time.perf_counter", unit="ms (median)",
                  rows=[], note="x: N×C×H×W encoder feature, z: N×C×H/2×W/2 decoder feature; each pair's up(z, "
                                "state), state from its down(x): FADE and SAPA generate their kernels from x and z "
                                "inside up, DySample its offsets from z; a2u's up only reassembles (its kernels "
                                "come from its down). Ratios: time / bilinear ×2's. '-': not timed (time guard).")
    for label, n, c, h in shapes:
        torch.manual_seed(0)
        x = torch.randn(n, c, h, h, device=device)
        z = torch.randn(n, c, h // 2, h // 2, device=device)
        cases: dict[str, Callable[[], Any]] = {
            "bilinear ×2": lambda: F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=False)}
        for name in ("a2u",) + _successors():
            pair = build_pair(name, c).to(device)
            with torch.no_grad():
                _, state = pair.down(x)
            cases[f"{name} up"] = lambda pair=pair, state=state: pair.up(z, state)
        base: dict[str, float | None] = {}
        for case, fn in cases.items():
            row: dict[str, Any] = {"shape": label, "n": n, "c": c, "h": h, "operator": case}
            for kind in ("fwd", "fwd+bwd"):
                if time.monotonic() > result["soft_deadline"]:
                    row[kind] = None
                    continue
                if kind == "fwd":
                    with torch.no_grad():
                        row[kind] = _timer(device, fn, warmup, repeats, result["soft_deadline"])
                else:
                    def fwd_bwd(fn=fn) -> None:
                        z.requires_grad_(True)
                        fn().sum().backward()
                        z.grad = None
                        z.requires_grad_(False)

                    row[kind] = _timer(device, fwd_bwd, warmup, repeats, result["soft_deadline"])
                if case == "bilinear ×2":
                    base[kind] = row[kind]
                row[f"{kind} ratio vs bilinear"] = _ratio(row[kind], base.get(kind))
            result["rows"].append(row)
        say(f"successors: {label} (N={n}, C={c}, H={h}): fwd+bwd ms " + ", ".join(
            f"{r['operator']} {_fmt(r['fwd+bwd'])}" for r in result["rows"] if r["shape"] == label))


# ------------------------------------------------------------------------------------------------ train
def paper_config(variant: str):
    """The paper config for one variant, without the encoder download (speed does not depend on the weights)."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(PAPER_CONFIG), import_custom_modules=False)
    cfg.model.network.upsampler = variant
    cfg.model.network.encoder_init_cfg = None
    return cfg


def synthetic_batch(batch: int, crop: int, device: torch.device) -> dict:
    """Random inputs (normalised RGB + trimap in {0, 0.5, 1}) and targets, already on the device."""
    g = torch.Generator(device="cpu").manual_seed(0)
    trimap = torch.randint(0, 3, (batch, 1, crop, crop), generator=g).float() / 2
    inputs = torch.cat([torch.randn(batch, 3, crop, crop, generator=g), trimap], 1)
    targets = {"alpha": torch.rand(batch, 1, crop, crop, generator=g), "unknown": (trimap == 0.5).float(),
               "fg": torch.rand(batch, 3, crop, crop, generator=g), "bg": torch.rand(batch, 3, crop, crop, generator=g),
               "image": torch.rand(batch, 3, crop, crop, generator=g)}
    return {"inputs": inputs.to(device), "data_samples": {k: v.to(device) for k, v in targets.items()}}


def train_speed(variant: str, device: torch.device, crop: int | None, batch: int | None, warmup: int, iters: int,
                amp: bool, soft_deadline: float) -> dict:
    """Iterations/s, peak memory and projected hours of the paper config's `train_step` for `variant`."""
    from mmengine.optim import build_optim_wrapper

    import models  # noqa: F401  (registers the network, its wrapper and the loss)
    from models.registry import MODELS

    cfg = paper_config(variant)
    crop = crop or int(cfg.crop_size)
    batch = batch or int(cfg.total_batch_size)
    row: dict[str, Any] = {"variant": variant, "crop": crop, "amp": "bf16 autocast (AmpOptimWrapper)" if amp else
                           "off (float32, as published)"}
    while True:
        row["batch"] = batch
        try:
            torch.manual_seed(0)
            model = MODELS.build(cfg.model).to(device).train()
            wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
            if amp:
                wrapper_cfg.update(type="AmpOptimWrapper", dtype="bfloat16")
            optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
            data = synthetic_batch(batch, crop, device)
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            for _ in range(warmup):
                model.train_step(data, optim_wrapper)
            if device.type == "cuda":
                torch.cuda.synchronize()
            done, begin = 0, time.perf_counter()
            while done < iters and (done == 0 or time.monotonic() < soft_deadline):
                losses = model.train_step(data, optim_wrapper)
                done += 1
                if done % 25 == 0:
                    say(f"train: {variant} ({'amp' if amp else 'fp32'}): {done}/{iters} iterations")
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - begin
            break
        except torch.cuda.OutOfMemoryError:
            model = optim_wrapper = data = None  # noqa: F841
            torch.cuda.empty_cache()
            if batch == 1:
                raise
            row.setdefault("out_of_memory_at_batch", []).append(batch)
            say(f"train: {variant}: out of memory at batch {batch}; retrying at {batch // 2}")
            batch //= 2
    its = done / seconds
    row.update(iterations=done, complete=done >= iters, seconds=round(seconds, 2), iterations_per_s=round(its, 3),
               images_per_s=round(its * batch, 2), loss=float(sum(v.item() for v in losses.values())),
               projected_hours_180k=round(PAPER_ITERS / its / 3600, 2))
    if device.type == "cuda":
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
        row["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2 ** 30, 2)
    say(f"train: {variant} ({'amp' if amp else 'fp32'}), crop {crop}, batch {batch}: {its:.3f} it/s over {done} "
        f"iterations, peak {row.get('peak_memory_gib', '-')} GiB, 180k iterations ≈ "
        f"{row['projected_hours_180k']} h on this device")
    return row


def section_train(result: dict, device: torch.device, sizes: dict, amp: bool, variants: tuple[str, ...]) -> None:
    result.update(config=str(PAPER_CONFIG.relative_to(REPO)), data="synthetic random tensors on the device "
                  "(no data loading in the timing)", encoder="random init (no download; speed is the same)",
                  step="mmengine BaseModel.train_step (forward, loss, backward, Adam step)", rows=[])
    for index, variant in enumerate(variants):
        # Each variant may use what is left divided by the variants left (the fast baseline runs first, so a
        # slower a2u inherits the time bilinear did not need).
        share = time.monotonic() + (result["soft_deadline"] - time.monotonic()) / (len(variants) - index)
        result["rows"].append(train_speed(variant, device, sizes["crop"], sizes["batch"], sizes["warmup"],
                                          sizes["amp_iters"] if amp else sizes["iters"], amp, share))
        if device.type == "cuda":
            torch.cuda.empty_cache()
    speed = {row["variant"]: row["iterations_per_s"] for row in result["rows"]}
    if {"a2u", "bilinear"} <= set(speed):  # seconds per iteration of a2u over those of bilinear
        result["a2u_time_vs_bilinear"] = round(speed["bilinear"] / speed["a2u"], 3)


# ------------------------------------------------------------------------------------------------ output
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}" if (abs(value) >= 1e-3 or value == 0) else f"{value:.2e}"
    return str(value)


def _table(rows: list[dict], keys: list[str]) -> list[str]:
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(row.get(k)) for k in keys) + " |" for row in rows]
    return lines


def render_markdown(data: dict) -> str:
    sections = data["sections"]
    lines = [f"# GPU readiness check ({'quick' if data['quick'] else 'full'})", "",
             f"Started {data['started']}, {data.get('elapsed_s')} s, `{data['tool']}`.", ""]
    for name, result in sections.items():
        lines += [f"## {name}: {result.get('status')} ({result.get('elapsed_s', '-')} s of a {result.get('budget_s')} s "
                  f"guard)", ""]
        if result.get("error"):
            lines += [f"Error: `{result['error']}`", ""]
        if result.get("reason"):
            lines += [f"Skipped: {result['reason']}.", ""]
            continue
        if name == "env":
            lines += [f"- {k}: {_fmt(v)}" for k, v in result.items() if k not in ("status", "elapsed_s", "budget_s")]
        elif name == "parity":
            lines += [result.get("note", ""), ""] + _table(result.get("checks", []), [
                "module", "fp32_error", "fp32_ok", "bfloat16_autocast_error", "float16_autocast_error"])
            triton_parity = result.get("triton", {})
            lines += ["", f"Triton reassembly against the CPU op: {triton_parity.get('status', '-')}"
                          f"{' (' + triton_parity['reason'] + ')' if triton_parity.get('reason') else ''}."]
            lines += [""] + _table(triton_parity["checks"], ["op", "cpu_backend", "fp32_error", "fp32_ok"]) \
                if triton_parity.get("checks") else []
        elif name == "ops":
            keys = ["shape", "a2u down (generator + A2D) fwd+bwd", "avg-pool 2×2 fwd+bwd", "max-pool 2×2 fwd+bwd",
                    "down ratio vs avg-pool fwd+bwd", "a2u up (reassembly) fwd+bwd", "bilinear ×2 fwd+bwd",
                    "up ratio vs bilinear fwd+bwd", "down ratio vs avg-pool fwd", "up ratio vs bilinear fwd",
                    "up triton speedup vs eager fwd+bwd", "down triton speedup vs eager fwd+bwd"]
            lines += [f"{result.get('note', '')} Times in {result.get('unit')}, {result.get('timer')}.", ""]
            lines += _table(result.get("rows", []), keys)
        elif name == "successors":
            lines += [f"{result.get('note', '')} Times in {result.get('unit')}, {result.get('timer')}.", ""]
            lines += _table(result.get("rows", []), ["shape", "operator", "fwd", "fwd+bwd", "fwd ratio vs bilinear",
                                                     "fwd+bwd ratio vs bilinear"])
        else:
            lines += [f"Config `{result.get('config')}`; {result.get('data')}; encoder {result.get('encoder')}; "
                      f"{result.get('step')}.", ""]
            lines += _table(result.get("rows", []), [
                "variant", "amp", "crop", "batch", "iterations", "complete", "iterations_per_s", "images_per_s",
                "peak_memory_gib", "projected_hours_180k", "out_of_memory_at_batch"])
            if result.get("a2u_time_vs_bilinear") is not None:
                lines += ["", f"Time per iteration, a2u / bilinear: {result['a2u_time_vs_bilinear']}."]
            if data["quick"]:
                lines += ["", "Quick mode: sizes are not the paper's, so the projection only exercises the code."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for gpu_check.json and gpu_check.md (created)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and a few iterations (CPU is fine)")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole run (default: 390 full, 180 quick)")
    parser.add_argument("--cudnn-benchmark", choices=["config", "on", "off"], default="config",
                        help="torch.backends.cudnn.benchmark for the timings (default: the paper config's env_cfg)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    deadline = args.budget if args.budget is not None else (180.0 if args.quick else 390.0)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    probe = args.out_dir / ".write-probe"
    probe.write_text("ok")  # fails now, not after minutes, when OUT_DIR is not writable
    probe.unlink()
    signal.signal(signal.SIGALRM, _alarm)
    say(f"gpu_check {'--quick ' if args.quick else ''}on {device}, results in {args.out_dir} (budget {deadline:.0f} s)")
    report = Report(args.out_dir, args.quick)
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    MMLogger.get_instance("gpu_check", log_level="WARNING")  # the current logger: no per-parameter lr lines

    env_cfg = Config.fromfile(str(PAPER_CONFIG), import_custom_modules=False).env_cfg
    benchmark = bool(env_cfg.get("cudnn_benchmark", False)) if args.cudnn_benchmark == "config" else \
        args.cudnn_benchmark == "on"
    torch.backends.cudnn.benchmark = benchmark
    budgets = sizes["budgets"]
    run_section(report, "env", budgets["env"], deadline, lambda r: section_env(r, device, benchmark))
    run_section(report, "parity", budgets["parity"], deadline, lambda r: section_parity(r, device, sizes["parity"]))
    run_section(report, "ops", budgets["ops"], deadline,
                lambda r: section_ops(r, device, sizes["ops"], sizes["op_warmup"], sizes["op_repeats"]))
    run_section(report, "train", budgets["train"], deadline,
                lambda r: section_train(r, device, sizes, False, ("bilinear", "a2u")))
    if device.type == "cuda":
        run_section(report, "train_amp", budgets["train_amp"], deadline,
                    lambda r: section_train(r, device, sizes, True, ("bilinear", "a2u")))
    else:
        report.data["sections"]["train_amp"] = {"status": "skipped", "reason": "MMEngine's AmpOptimWrapper needs "
                                                "a GPU", "elapsed_s": 0.0, "budget_s": 0.0}
    run_section(report, "successors", budgets["successors"], deadline,
                lambda r: section_successors(r, device, sizes["successor_ops"], sizes["op_warmup"],
                                             sizes["op_repeats"]))
    report.data["imported_top_level_modules"] = sorted({m.split(".")[0] for m in sys.modules})
    report.write()
    statuses = {name: s["status"] for name, s in report.data["sections"].items()}
    say(f"done: {statuses}; {args.out_dir / 'gpu_check.md'}")
    return 0 if all(s in ("ok", "skipped") for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
