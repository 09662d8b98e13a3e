"""The verify stage's checks; each returns a JSON-ready dict with the measured numbers and `passed`.

- `metric_parity`: SAD/MSE/Grad/Conn of `pipeline.matting.metrics` against the MATLAB reference values of the
  embedded golden cases (`golden/`), relative error per metric;
- `operator_parity`: the fast reassembly kernels (blocked forward, autograd path, export form) against the
  loop transcriptions of `references.py`, in float64, max |Δ|;
- `gradients`: `torch.autograd.gradcheck` of the two explicit backward passes (float64);
- `parameter_counts`: kernel generators and matting networks against the official code's counts
  (`reference_counts.yaml`);
- `onnx_parity`: an A2D/A2U pair exported to ONNX (TorchScript exporter, dynamic H, W) and run by onnxruntime at
  two sizes, max |Δ| against eager PyTorch.
"""
from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

GOLDEN_DIR = Path(__file__).with_name("golden")
REFERENCE_COUNTS = Path(__file__).with_name("reference_counts.yaml")
#: Relative tolerance of the metric parity (the reference computes in single precision; float64 here).
METRIC_RTOL = 1e-5
#: Float64 tolerance of the operator parity.
OPERATOR_ATOL = 1e-12
#: onnxruntime runs in float32.
ONNX_ATOL = 1e-4
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


def operator_parity(seed: int = 0) -> dict[str, Any]:
    """max |fast − loop| (float64) of up/down reassembly for G = 1 and 2, every execution path."""
    from models.ops.kernels.down import a2d_downsample, a2d_downsample_plain
    from models.ops.kernels.up import reassemble_up, reassemble_up_plain
    from pipeline.verify.references import downsample_loop, upsample_loop

    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {"dtype": "float64", "tolerance": OPERATOR_ATOL, "up": {}, "down": {}}
    for groups in (1, 2):
        x = torch.randn(2, 4, 5, 6, generator=gen, dtype=torch.float64)
        kernels = _softmax_kernels(gen, 2, groups, 9, 10, 12)
        reference = upsample_loop(x, kernels, 3, groups)
        with torch.no_grad():
            blocked = reassemble_up(x, kernels, 3, groups)
        autograd = reassemble_up(x.clone().requires_grad_(), kernels, 3, groups).detach()
        plain = reassemble_up_plain(x, kernels, 3, groups)
        out["up"][f"G{groups}"] = {name: float((y - reference).abs().max())
                                   for name, y in (("blocked", blocked), ("autograd", autograd), ("plain", plain))}
        x = torch.randn(2, 4, 10, 12, generator=gen, dtype=torch.float64)
        kernels = _softmax_kernels(gen, 2, groups, 36, 5, 6)
        reference = downsample_loop(x, kernels, 6, groups)
        with torch.no_grad():
            blocked = a2d_downsample(x, kernels, 6, groups)
        autograd = a2d_downsample(x.clone().requires_grad_(), kernels, 6, groups).detach()
        plain = a2d_downsample_plain(x, kernels, 6, groups)
        out["down"][f"G{groups}"] = {name: float((y - reference).abs().max())
                                     for name, y in (("blocked", blocked), ("autograd", autograd), ("plain", plain))}
    out["max_abs_error"] = max(v for d in ("up", "down") for per in out[d].values() for v in per.values())
    out["passed"] = out["max_abs_error"] <= OPERATOR_ATOL
    return out


def gradients(seed: int = 0) -> dict[str, Any]:
    """gradcheck of the explicit backward passes of up (s=3) and down (k=6) reassembly, G = 2, float64."""
    from models.ops.kernels.down import a2d_downsample
    from models.ops.kernels.up import reassemble_up

    gen = torch.Generator().manual_seed(seed)
    x_up = torch.randn(1, 4, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    k_up = _softmax_kernels(gen, 1, 2, 9, 6, 8).requires_grad_()
    x_dn = torch.randn(1, 4, 6, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    k_dn = _softmax_kernels(gen, 1, 2, 36, 3, 4).requires_grad_()
    results = {"up": bool(torch.autograd.gradcheck(lambda x, k: reassemble_up(x, k, 3, 2), (x_up, k_up))),
               "down": bool(torch.autograd.gradcheck(lambda x, k: a2d_downsample(x, k, 6, 2), (x_dn, k_dn)))}
    return {"method": "torch.autograd.gradcheck (float64, default eps/atol/rtol)", **results,
            "passed": all(results.values())}


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
            "gradients": gradients(seed), "parameter_counts": parameter_counts(), "onnx_parity": onnx_parity(seed)}
