"""The verify stage's check of A2U's successors FADE, SAPA and DySample (successors_spec.md).

`successor_checks(seed)` returns one JSON-ready dict:

- `identities`: max |Δ| (float64) of the zero-parameter identities that pin each operator's arithmetic: FADE and
  FADE-Lite with every parameter zero equal ½·guide + ½·(nearest-upsampled 5×5 box of x, zero padding, /25);
  SAPA-B and SAPA-G with every parameter zero equal that box; DySample and DySample+ with zero offset weights
  equal bilinear ×2 upsampling (`align_corners=False`);
- `gradients`: `torch.autograd.gradcheck` (float64) of each operator with respect to its inputs and every
  parameter, at random parameters;
- `parameter_counts`: what each successor adds to the matting network at the paper's width (1.0) over bilinear,
  against the official code's counts where they are published (`reference_counts.yaml`, section `successors`);
- `onnx`: each operator exported to ONNX (TorchScript exporter, opset 17, dynamic H, W) and run by onnxruntime
  at two sizes, max |Δ| / max |eager| (float32).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
import yaml
from torch import nn

REFERENCE_COUNTS = Path(__file__).with_name("reference_counts.yaml")
#: float64 tolerance of the identities.
IDENTITY_ATOL = 1e-12
#: onnxruntime runs in float32; the diff is relative to the output's largest magnitude.
ONNX_SCALED_TOL = 1e-5
#: (class name in MODELS, constructor keywords) of each successor, by its operator-pair name.
OPERATORS = {"fade": ("FADE", {}), "fade-lite": ("FADE", {"lite": True}), "sapa": ("SAPA", {}),
             "sapa-g": ("SAPA", {"q_mode": "gate"}), "dysample": ("DySample", {}),
             "dysample-plus": ("DySample", {"dyscope": True})}


def _build(name: str, channels: int, **extra: Any) -> nn.Module:
    import models  # noqa: F401  (registers the operators)
    from models.registry import MODELS

    cls_name, kwargs = OPERATORS[name]
    return MODELS.build(dict(type=cls_name, in_channels=channels, **kwargs, **extra))


def _guided(name: str) -> bool:
    return not name.startswith("dysample")


def randomise_parameters(module: nn.Module, std: float = 0.5, seed: int = 0) -> nn.Module:
    """Every parameter redrawn N(0, std²) (LayerNorm weights around 1), so biases and gates matter too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in module.named_parameters():
            centre = 1.0 if pname.startswith("norm") and pname.endswith("weight") else 0.0
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std + centre)
    return module


def _inputs(name: str, c: int, h: int, w: int, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """(x,) for DySample, (x, guide) with the guide 2h×2w for the guided operators."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, c, h, w, generator=gen, dtype=dtype)
    return (x, torch.randn(1, c, 2 * h, 2 * w, generator=gen, dtype=dtype)) if _guided(name) else (x,)


def _box(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Nearest-upsampled (×2) k×k box sum of x with zero padding, divided by k²."""
    return F.interpolate(F.avg_pool2d(x, k, 1, k // 2, count_include_pad=True), scale_factor=2, mode="nearest")


def identities(seed: int = 0) -> dict[str, float]:
    """max |Δ| of each operator's zero-parameter identity (see the module docstring), float64."""
    out = {}
    for name in OPERATORS:
        module = _build(name, 8).double()
        if name.startswith("dysample"):           # offsets zero; the rest (e.g. DySample+'s scope) random
            randomise_parameters(module, 0.5, seed)
            zeroed = module.offset.parameters()
        else:
            zeroed = module.parameters()
        with torch.no_grad():
            for p in zeroed:
                p.zero_()
        inputs = _inputs(name, 8, 3, 5, seed, torch.float64)
        x = inputs[0]
        expected = (0.5 * inputs[1] + 0.5 * _box(x) if name.startswith("fade") else _box(x) if _guided(name)
                    else F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        with torch.no_grad():
            out[name] = float((module(*inputs) - expected).abs().max())
    return out


def _gradcheck(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bool:
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    inputs = tuple(t.detach().clone().requires_grad_() for t in inputs)

    def fn(*args: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, dict(zip(names, args[len(inputs):])), args[:len(inputs)])

    return bool(torch.autograd.gradcheck(fn, inputs + params, eps=1e-6, atol=1e-6, rtol=1e-4))


def gradients(seed: int = 0) -> dict[str, bool]:
    """gradcheck (float64, inputs and parameters) of FADE, FADE-Lite, SAPA-B, SAPA-G, DySample, DySample+."""
    small = {"fade": {"compressed_channels": 2}, "sapa": {"compressed_channels": 2},
             "sapa-g": {"compressed_channels": 2}, "dysample": {"up_group": 2}, "dysample-plus": {"up_group": 2}}
    out = {}
    for name in OPERATORS:
        channels = 4 if name.startswith("dysample") else 2
        module = randomise_parameters(_build(name, channels, **small.get(name, {})).double(), 0.3, seed)
        out[name] = _gradcheck(module, _inputs(name, channels, 3, 5, seed + 1, torch.float64))
    return out


def parameter_counts(reference: str | Path = REFERENCE_COUNTS) -> dict[str, dict[str, Any]]:
    """Parameters each successor adds to the matting network (width 1.0) over bilinear; official where known."""
    import models  # noqa: F401
    from models.matting.network import A2UMattingNet

    official = yaml.safe_load(Path(reference).read_text())["successors"]["extra"]

    def count(variant: str) -> int:
        return sum(p.numel() for p in A2UMattingNet(upsampler=variant).parameters())

    base = count("bilinear")
    rows = {}
    for name in OPERATORS:
        ours = count(name) - base
        expected = official.get(name)
        rows[name] = {"ours": ours, "official": expected, "equal": None if expected is None else ours == expected}
    return rows


def onnx(seed: int = 0) -> dict[str, float]:
    """Max |onnxruntime − eager| / max |eager| per operator at two sizes of one export (TorchScript exporter,
    opset 17, dynamic H, W; float32)."""
    import onnxruntime as ort

    out = {}
    for name in OPERATORS:
        torch.manual_seed(seed)
        module = randomise_parameters(_build(name, 8), 0.3, seed).eval()
        names = ["x", "guide"] if _guided(name) else ["x"]
        dynamic = {"x": {2: "h", 3: "w"}, "guide": {2: "H", 3: "W"}, "y": {2: "H", 3: "W"}}
        buffer = io.BytesIO()
        with warnings.catch_warnings():        # the tracer's constant shape checks; the second size tests them
            warnings.simplefilter("ignore")
            torch.onnx.export(module, _inputs(name, 8, 4, 6, seed, torch.float32), buffer, input_names=names,
                              output_names=["y"], dynamic_axes={k: dynamic[k] for k in (*names, "y")},
                              opset_version=17, dynamo=False)
        session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
        worst = 0.0
        for h, w in ((4, 6), (7, 5)):
            inputs = _inputs(name, 8, h, w, seed + h * w, torch.float32)
            with torch.no_grad():
                expected = module(*inputs)
            got = torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])
            worst = max(worst, float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-30)))
        out[name] = worst
    return out


def successor_checks(seed: int = 0, onnx_check: Callable[[int], dict[str, float]] | None = None
                     ) -> dict[str, Any]:
    """All four checks; `passed` is False when any fails, None when onnxruntime is missing and all else passed."""
    result: dict[str, Any] = {"operators": {n: {"type": c, **k} for n, (c, k) in OPERATORS.items()},
                              "identities": identities(seed), "identity_tolerance": IDENTITY_ATOL,
                              "gradients": gradients(seed), "parameter_counts": parameter_counts(),
                              "onnx_tolerance": ONNX_SCALED_TOL}
    try:
        import onnxruntime  # noqa: F401
        result["onnx"] = (onnx_check or onnx)(seed)
    except ImportError as exc:
        result["onnx_skipped"] = f"onnxruntime is not installed ({exc})"
    ok = (max(result["identities"].values()) <= IDENTITY_ATOL and all(result["gradients"].values())
          and all(r["equal"] is not False for r in result["parameter_counts"].values())
          and ("onnx" not in result or max(result["onnx"].values()) <= ONNX_SCALED_TOL))
    result["passed"] = (None if "onnx" not in result else True) if ok else False
    return result
