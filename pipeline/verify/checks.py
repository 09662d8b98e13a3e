"""The verify stage's checks; each returns a JSON-ready dict with the measured numbers and `passed`.

- `metric_parity`: SAD/MSE/Grad/Conn of `pipeline.matting.metrics` against the MATLAB reference values of the
  embedded golden cases (`golden/`), relative error per metric;
- `operator_parity`: the fast reassembly kernels (the fused C++ CPU op when built, the pure-PyTorch blocked
  forward and autograd path, the export form) against the loop transcriptions of `references.py`, in float64,
  max |Δ|;
- `gradients`: `torch.autograd.gradcheck` of the explicit backward passes (pure PyTorch, and the fused C++ op
  when built; float64);
- `fused_parity`: which reassembly backend eager CPU calls use (`fused-cpp` or `eager`, with the reason when
  eager) and the fused C++ op against the pure-PyTorch kernels at a matting-like shape (float32, forward and
  both gradients, relative max |Δ|); not run (`passed: null`) where the op is not built;
- `parameter_counts`: kernel generators and matting networks against the official code's counts
  (`reference_counts.yaml`);
- `onnx_parity`: an A2D/A2U pair exported to ONNX (TorchScript exporter, dynamic H, W) and run by onnxruntime at
  two sizes, max |Δ| against eager PyTorch;
- `successors`: FADE, SAPA and DySample (`pipeline.verify.successors`): zero-parameter identities, gradcheck,
  matting-network parameter counts against the official code's, ONNX/onnxruntime parity.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from pipeline.verify.successors import successor_checks

GOLDEN_DIR = Path(__file__).with_name("golden")
REFERENCE_COUNTS = Path(__file__).with_name("reference_counts.yaml")
#: Relative tolerance of the metric parity (the reference computes in single precision; float64 here).
METRIC_RTOL = 1e-5
#: Float64 tolerance of the operator parity.
OPERATOR_ATOL = 1e-12
#: onnxruntime runs in float32.
ONNX_ATOL = 1e-4
#: Relative tolerance (max |Δ| / max |reference|) of the fused C++ op against the pure-PyTorch kernels, float32.
FUSED_RTOL = 1e-5
#: The matting-like shape of `fused_parity`: batch, channels, high-resolution size R (matting stage 1 of a
#: 128² input); A2U brings R/2 up to R (s = 3), A2D takes R down to R/2 (k = 6); G = 1.
FUSED_SHAPE = {"batch": 2, "channels": 64, "size": 64}
GOLDEN_TEST = "tests/test_matting/test_metrics.py::test_golden_cases_all_metrics"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def metric_parity(golden_dir: str | Path = GOLDEN_DIR) -> dict[str, Any]:
    """Every embedded golden case through `compute_matting_metrics`; a file whose sha256 differs is an error."""
    from pipeline.core.io import read_alpha, read_trimap
    from pipeline.matting.metrics import METRIC_NAMES, compute_matting_metrics

    golden_dir = Path(golden_dir)
    cases = json.loads((golden_dir / "golden.json").read_text())
    rows = []
    for case in cases:
        folder = golden_dir / "cases" / case["case"]
        for part, digest in case["sha256"].items():
            if _sha256(folder / f"{part}.png") != digest:
                raise ValueError(f"{folder / f'{part}.png'}: sha256 differs from {golden_dir / 'golden.json'}")
        ours = compute_matting_metrics(read_alpha(folder / "pred.png"), read_alpha(folder / "gt.png"),
                                       read_trimap(folder / "trimap.png"))
        errors = {m: abs(ours[m] - case[m]) / abs(case[m]) if case[m] else abs(ours[m]) for m in METRIC_NAMES}
        rows.append({"case": case["case"], "reference": {m: case[m] for m in METRIC_NAMES},
                     "ours": {m: ours[m] for m in METRIC_NAMES}, "rel_error": errors})
    worst = {m: max(r["rel_error"][m] for r in rows) for m in METRIC_NAMES}
    return {"reference": "original MATLAB evaluation code of Deep Image Matting, run under GNU Octave 7.3.0",
            "n_cases": len(rows), "max_rel_error": worst, "tolerance": METRIC_RTOL,
            "passed": all(v <= METRIC_RTOL for v in worst.values()), "cases": rows,
            "full_set": {"n_cases": 45, "test": GOLDEN_TEST,
                         "note": "39 further cases on alphamatting.com images, checked by the test suite"}}


def _softmax_kernels(generator: torch.Generator, n: int, groups: int, taps: int, h: int, w: int) -> torch.Tensor:
    logits = torch.randn(n, groups, taps, h, w, generator=generator, dtype=torch.float64)
    return logits.softmax(dim=2).reshape(n, groups * taps, h, w)


@contextlib.contextmanager
def pure_pytorch() -> Iterator[None]:
    """The pure-PyTorch reassembly kernels inside the block (not the fused C++ op), without the fallback warning."""
    from models.ops.kernels import fused_cpu

    with fused_cpu.fallback(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="a2u: fused CPU reassembly disabled", category=RuntimeWarning)
        yield


def cpu_backend() -> dict[str, Any]:
    """Which reassembly backend eager CPU calls use, whether the fused op is built, and why not / why off."""
    from models.ops.kernels import fused_cpu

    backend, built = fused_cpu.backend("cpu"), fused_cpu.available()
    reason = None
    if not built:
        reason = fused_cpu.unavailable_reason()
    elif backend != "fused-cpp":
        reason = f"disabled ({fused_cpu.ENV_VAR}=0 or fused_cpu.set_fused_enabled(False))"
    return {"backend": backend, "fused_built": built, "reason": reason}


def operator_parity(seed: int = 0) -> dict[str, Any]:
    """max |fast − loop| (float64) of up/down reassembly for G = 1 and 2, every execution path.

    `blocked` and `autograd` are the pure-PyTorch kernels (run under `fused_cpu.fallback()`); `fused` is the C++
    op (absent where it is not built); `plain` is the export form.
    """
    from models.ops.kernels import fused_cpu
    from models.ops.kernels.down import a2d_downsample, a2d_downsample_plain
    from models.ops.kernels.up import reassemble_up, reassemble_up_plain
    from pipeline.verify.references import downsample_loop, upsample_loop

    fused = fused_cpu.available()
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {"dtype": "float64", "tolerance": OPERATOR_ATOL, "fused": fused, "up": {}, "down": {}}
    for groups in (1, 2):
        x = torch.randn(2, 4, 5, 6, generator=gen, dtype=torch.float64)
        kernels = _softmax_kernels(gen, 2, groups, 9, 10, 12)
        reference = upsample_loop(x, kernels, 3, groups)
        with pure_pytorch():
            with torch.no_grad():
                blocked = reassemble_up(x, kernels, 3, groups)
            autograd = reassemble_up(x.clone().requires_grad_(), kernels, 3, groups).detach()
        paths = {"blocked": blocked, "autograd": autograd, "plain": reassemble_up_plain(x, kernels, 3, groups)}
        if fused:
            paths["fused"] = fused_cpu.reassemble_up(x.clone().requires_grad_(), kernels, 3, groups, 2).detach()
        out["up"][f"G{groups}"] = {name: float((y - reference).abs().max()) for name, y in paths.items()}
        x = torch.randn(2, 4, 10, 12, generator=gen, dtype=torch.float64)
        kernels = _softmax_kernels(gen, 2, groups, 36, 5, 6)
        reference = downsample_loop(x, kernels, 6, groups)
        with pure_pytorch():
            with torch.no_grad():
                blocked = a2d_downsample(x, kernels, 6, groups)
            autograd = a2d_downsample(x.clone().requires_grad_(), kernels, 6, groups).detach()
        paths = {"blocked": blocked, "autograd": autograd, "plain": a2d_downsample_plain(x, kernels, 6, groups)}
        if fused:
            paths["fused"] = fused_cpu.reassemble_down(x.clone().requires_grad_(), kernels, 6, groups).detach()
        out["down"][f"G{groups}"] = {name: float((y - reference).abs().max()) for name, y in paths.items()}
    out["max_abs_error"] = max(v for d in ("up", "down") for per in out[d].values() for v in per.values())
    out["passed"] = out["max_abs_error"] <= OPERATOR_ATOL
    return out


def gradients(seed: int = 0) -> dict[str, Any]:
    """gradcheck of the explicit backward passes of up (s=3) and down (k=6) reassembly, G = 2, float64: the
    pure-PyTorch autograd Functions (`up`, `down`) and, where built, the fused C++ op (`up_fused`, `down_fused`)."""
    from models.ops.kernels import fused_cpu
    from models.ops.kernels.down import a2d_downsample
    from models.ops.kernels.up import reassemble_up

    gen = torch.Generator().manual_seed(seed)
    x_up = torch.randn(1, 4, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    k_up = _softmax_kernels(gen, 1, 2, 9, 6, 8).requires_grad_()
    x_dn = torch.randn(1, 4, 6, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    k_dn = _softmax_kernels(gen, 1, 2, 36, 3, 4).requires_grad_()
    with pure_pytorch():
        results = {"up": bool(torch.autograd.gradcheck(lambda x, k: reassemble_up(x, k, 3, 2), (x_up, k_up))),
                   "down": bool(torch.autograd.gradcheck(lambda x, k: a2d_downsample(x, k, 6, 2), (x_dn, k_dn)))}
    if fused_cpu.available():
        results["up_fused"] = bool(torch.autograd.gradcheck(
            lambda x, k: fused_cpu.reassemble_up(x, k, 3, 2, 2), (x_up, k_up)))
        results["down_fused"] = bool(torch.autograd.gradcheck(
            lambda x, k: fused_cpu.reassemble_down(x, k, 6, 2), (x_dn, k_dn)))
    return {"method": "torch.autograd.gradcheck (float64, default eps/atol/rtol)", **results,
            "passed": all(results.values())}


def _relative(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


def fused_parity(seed: int = 0, shape: dict[str, int] | None = None) -> dict[str, Any]:
    """The CPU reassembly backend, and the fused C++ ops against the pure-PyTorch kernels (float32, matting shape).

    Relative error max |fused − eager| / max |eager| of the output and both gradients of A2U up (s = 3, ×2), A2D
    down (k = 6; softmax-normalised kernels), the generator's u, v correlation (k = 6, stride 2; the
    gradients of x and of the filters, reported as grad_kernels) and its GroupNorm-LeakyReLU-product embedding
    (e_u, e_v at the correlation's output size, 32 groups or fewer, random affine; the gradients of e_u and e_v,
    reported as grad_x and grad_kernels), one random upstream gradient. The fused op is called
    directly, so the parity is checked even where `A2U_FUSED_CPU=0` turns it off for the run.
    """
    from models.ops.kernels import fused_cpu
    from models.ops.kernels.depthwise import depthwise_correlations
    from models.ops.kernels.down import a2d_downsample
    from models.ops.kernels.up import reassemble_up

    shape = dict(shape or FUSED_SHAPE)
    n, c, size = shape["batch"], shape["channels"], shape["size"]
    out: dict[str, Any] = {**cpu_backend(), "dtype": "float32", "tolerance": FUSED_RTOL,
                           "error": "max |fused - eager| / max |eager|",
                           "shape": {**shape, "up": f"{n}x{c}x{size // 2}x{size // 2} -> {size}x{size}, s=3",
                                     "down": f"{n}x{c}x{size}x{size} -> {size // 2}x{size // 2}, k=6",
                                     "correlation": f"{n}x{c}x{size}x{size}, 2 shared 6x6 filters, stride 2",
                                     "embedding": f"e_u, e_v {n}x{c}x{size // 2}x{size // 2}, "
                                                  f"GroupNorm({_norm_groups(c)}, {c})"}}
    if not out["fused_built"]:
        return {**out, "passed": None, "skipped": f"fused CPU op not built: {out['reason']}"}
    gen = torch.Generator().manual_seed(seed)
    cases = {
        "up": (torch.randn(n, c, size // 2, size // 2, generator=gen),
               _softmax_kernels(gen, n, 1, 9, size, size).float(),
               lambda x, k: fused_cpu.reassemble_up(x, k, 3, 1, 2), lambda x, k: reassemble_up(x, k, 3, 1, 2)),
        "down": (torch.randn(n, c, size, size, generator=gen),
                 _softmax_kernels(gen, n, 1, 36, size // 2, size // 2).float(),
                 lambda x, k: fused_cpu.reassemble_down(x, k, 6, 1), lambda x, k: a2d_downsample(x, k, 6, 1)),
        # the generator's u, v correlations (k = 6, stride 2, shared filters): one tensor per path
        "correlation": (torch.randn(n, c, size, size, generator=gen), torch.randn(n, 2, 6, 6, generator=gen),
                        lambda x, f: fused_cpu.correlate(x, f, 6, 2, 2),
                        lambda x, f: torch.stack(depthwise_correlations(x, f, 6, 2, 2))),
        # the generator's steps 3-4 (GroupNorm, LeakyReLU, u·v product, channel sum) on e_u, e_v
        "embedding": (torch.randn(n, c, size // 2, size // 2, generator=gen),
                      torch.randn(n, c, size // 2, size // 2, generator=gen),
                      *_embedding_paths(gen, c))}
    for name, (x, kernels, fused_fn, eager_fn) in cases.items():
        values = {}
        for path, fn in (("fused", fused_fn), ("eager", eager_fn)):
            a, b = x.clone().requires_grad_(), kernels.clone().requires_grad_()
            with pure_pytorch() if path == "eager" else contextlib.nullcontext():
                y = fn(a, b)
                grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed + 1))
                values[path] = (y.detach(), *torch.autograd.grad(y, (a, b), grad))
        out[name] = {part: _relative(f, e) for part, f, e in zip(("output", "grad_x", "grad_kernels"),
                                                                 values["fused"], values["eager"])}
    out["max_rel_error"] = max(v for d in cases for v in out[d].values())
    out["passed"] = out["max_rel_error"] <= FUSED_RTOL
    return out


def _norm_groups(channels: int) -> int:
    """GroupNorm groups for the parity check at `channels`: 32 (the generator's default) or, for small C, the
    largest divisor of C that divides 32."""
    return math.gcd(32, channels)


def _embedding_paths(gen: torch.Generator, channels: int) -> tuple[Callable, Callable]:
    """(fused, eager) functions of the generator's embedding step with random affine GroupNorms: the fused op
    called directly, and the generator's eager form `models.ops.a2u.embedding_product`."""
    from models.ops.a2u import embedding_product
    from models.ops.kernels import fused_cpu

    norms = [nn.GroupNorm(_norm_groups(channels), channels) for _ in range(2)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.copy_(1 + 0.5 * torch.randn(channels, generator=gen))
            norm.bias.copy_(0.5 * torch.randn(channels, generator=gen))
    return (lambda e_u, e_v: fused_cpu.embed_product(e_u, e_v, *norms)), \
        (lambda e_u, e_v: embedding_product(e_u, e_v, *norms))


def _count(module: nn.Module, skip_groupnorm_affine: bool = False) -> int:
    skip = {id(p) for m in module.modules() if isinstance(m, nn.GroupNorm) for p in m.parameters()} \
        if skip_groupnorm_affine else set()
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def parameter_counts(reference: str | Path = REFERENCE_COUNTS) -> dict[str, Any]:
    """Generator counts per channel width and matting-network counts against the official code's."""
    import models  # noqa: F401  (registers the pairs)
    from models.matting.network import A2UMattingNet
    from models.ops.pairs import build_pair

    ref = yaml.safe_load(Path(reference).read_text())
    generator = {}
    for kind, pair in (("shared", "a2u"), ("unshared", "a2u-unshared")):
        for channels, expected in ref["generator"][kind].items():
            count = _count(build_pair(pair, channels=int(channels)))
            generator[f"{kind} C={channels}"] = {"ours": count, "official": int(expected)}
    torch.manual_seed(0)
    nets = {v: A2UMattingNet(upsampler=v) for v in ("bilinear", "a2u", "a2u-unshared")}
    base = _count(nets["bilinear"])
    network = {"bilinear": {"ours": base, "official": int(ref["network"]["bilinear"])}}
    for variant, expected in ref["network"]["extra"].items():
        network[f"{variant} extra"] = {"ours": _count(nets[variant]) - base, "official": int(expected)}
    network["a2u extra without GroupNorm affine"] = {
        "ours": _count(nets["a2u"], True) - _count(nets["bilinear"], True),
        "official": int(ref["network"]["a2u_extra_without_groupnorm_affine"])}
    rows = {**generator, **network}
    for row in rows.values():
        row["equal"] = row["ours"] == row["official"]
    return {"source": {"generator": ref["generator"]["source"], "network": ref["network"]["source"]},
            "generator": generator, "network": network, "passed": all(r["equal"] for r in rows.values())}


def onnx_parity(seed: int = 0, channels: int = 32, sizes: tuple[tuple[int, int], ...] = ((32, 48), (64, 64))
                ) -> dict[str, Any]:
    """Export the matting network's A2D/A2U pair once (dynamic H, W) and compare onnxruntime with eager."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # reported, not hidden
        return {"passed": None, "skipped": f"onnxruntime is not installed ({exc})"}
    import models  # noqa: F401
    from models.matting.network import build_matting_pair
    from models.ops.pairs import PairRoundTrip

    torch.manual_seed(seed)
    module = PairRoundTrip(build_matting_pair("a2u", channels)).eval()
    gen = torch.Generator().manual_seed(seed)

    def inputs(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.randn(1, channels, h, w, generator=gen), torch.randn(1, channels, h // 2, w // 2, generator=gen))

    buffer = io.BytesIO()
    dynamic = {"x": {2: "H", 3: "W"}, "z": {2: "h", 3: "w"}, "low": {2: "h", 3: "w"}, "up": {2: "H", 3: "W"}}
    # The tracer warns about the shape checks (constant while tracing) and about constant folding; the second
    # size below shows the exported graph is right at other sizes. The warnings are counted, not printed.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(module, inputs(*sizes[0]), buffer, input_names=["x", "z"], output_names=["low", "up"],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    per_size = {}
    for h, w in sizes:
        x, z = inputs(h, w)
        with torch.no_grad():
            expected = module(x, z)
        got = session.run(None, {"x": x.numpy(), "z": z.numpy()})
        per_size[f"{h}x{w}"] = max(float(abs(torch.from_numpy(g) - e).max()) for g, e in zip(got, expected))
    worst = max(per_size.values())
    return {"module": f"matting A2D/A2U pair, C={channels} (x: N×C×H×W, z: N×C×H/2×W/2)",
            "exporter": "torch.onnx.export (TorchScript, opset 17, dynamic H, W)",
            "runtime": f"onnxruntime {ort.__version__} (CPU, float32)", "max_abs_diff": per_size,
            "export_warnings": sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:120]}"
                                       for w in caught}),
            "max_abs_diff_worst": worst, "tolerance": ONNX_ATOL, "passed": worst <= ONNX_ATOL}


def run_all(seed: int) -> dict[str, Any]:
    """Every check, in the order the report lists them."""
    return {"metric_parity": metric_parity(), "operator_parity": operator_parity(seed),
            "gradients": gradients(seed), "fused_parity": fused_parity(seed),
            "parameter_counts": parameter_counts(), "onnx_parity": onnx_parity(seed),
            "successors": successor_checks(seed)}
