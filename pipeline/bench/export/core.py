"""Export a module with dynamic H and W, and check the exported graph against eager PyTorch.

Spatial dimensions are described once, by `HwScales`: input name -> s, meaning that input's dims 2 and 3
are s·h and s·w for free integers h, w. This encodes both the relations between inputs (A2U kernels are
twice the size of the low-resolution feature: scales 2 and 1) and divisibility (the matting network needs
multiples of 16: scale 16). The same description drives

- the TorchScript-based ONNX exporter (`dynamo=False`, fast: about a second here): named dynamic axes;
- the dynamo-based ONNX exporter (`dynamo=True`) and `torch.export.export`: `torch.export.Dim`s h, w and
  derived dims s·h, s·w (slow on CPU: seconds to minutes for a whole network, symbolic shape reasoning).

A2U's functional ops switch to their out-of-place `*_plain` formulation while tracing or exporting (see
models/ops/kernels/up.py, down.py), so both exporters see only standard ops (pad, slice, mul, add, pixel_(un)shuffle).
The kernel generator likewise switches by itself to exact shape-generic forms of two steps under ONNX export and
torch.export (models/ops/kernels/depthwise.py): k×k adaptive pooling (without it the TorchScript exporter refuses and
the dynamo exporter is silently wrong at other sizes) and the per-image depthwise convolution.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from pipeline.core.io import atomic_path

HwScales = Mapping[str, int]
MIN_OPSET = 17


def _check_names(input_names: Sequence[str], example_inputs: tuple[torch.Tensor, ...], scales: HwScales) -> None:
    if len(input_names) != len(example_inputs):
        raise ValueError(f"input_names has {len(input_names)} names for {len(example_inputs)} example inputs")
    unknown = set(scales) - set(input_names)
    if unknown:
        raise ValueError(f"hw_scales names inputs {sorted(unknown)} that are not in input_names {list(input_names)}")
    for name, tensor in zip(input_names, example_inputs):
        scale = scales.get(name)
        if scale is not None and (scale < 1 or tensor.shape[2] % scale or tensor.shape[3] % scale):
            raise ValueError(f"example input {name!r} of shape {tuple(tensor.shape)} is not a multiple of its "
                             f"hw scale {scale}")


def _dims(scales: HwScales, max_size: int) -> dict[str, dict[int, Any]]:
    """torch.export dynamic_shapes: shared Dims h, w; input with scale s gets s·h, s·w."""
    base = min(scales.values())
    h = Dim("h", min=2, max=max_size // base)
    w = Dim("w", min=2, max=max_size // base)
    out = {}
    for name, scale in scales.items():
        factor = scale // base
        if scale % base:
            raise ValueError(f"hw scale {scale} of {name!r} is not a multiple of the smallest scale {base}")
        out[name] = {2: h if factor == 1 else factor * h, 3: w if factor == 1 else factor * w}
    return out


def export_program(module: nn.Module, example_inputs: tuple[torch.Tensor, ...], input_names: Sequence[str],
                   hw_scales: HwScales, max_size: int = 4096) -> torch.export.ExportedProgram:
    """`torch.export.export` with dynamic H, W per `hw_scales` (see module docstring); the module in eval mode."""
    _check_names(input_names, example_inputs, hw_scales)
    module = module.eval()
    dims = _dims(hw_scales, max_size)
    dynamic_shapes = {name: dims.get(name) for name in input_names}
    return torch.export.export(module, example_inputs, dynamic_shapes=_by_forward_arg(module, dynamic_shapes))


def _by_forward_arg(module: nn.Module, by_name: dict[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
    """torch.export keys dynamic_shapes by forward's argument names; fall back to positional order."""
    import inspect

    params = [p for p in inspect.signature(module.forward).parameters if p not in ("self",)]
    if len(params) >= len(by_name) and all(n in params for n in by_name):
        return by_name
    return tuple(by_name.values())


def export_onnx(module: nn.Module, example_inputs: tuple[torch.Tensor, ...], path: str | Path,
                input_names: Sequence[str], output_names: Sequence[str], hw_scales: HwScales,
                opset: int = MIN_OPSET, dynamo: bool = False, max_size: int = 4096) -> Path:
    """Write an ONNX file (atomically): batch size fixed, H and W dynamic per `hw_scales`.

    Args:
        module: exported in eval mode.
        example_inputs: tensors whose dims 2, 3 are multiples of their `hw_scales`.
        path: destination `.onnx` file.
        opset: ONNX opset, at least 17 (the dynamo exporter raises it to 18, its lowest implemented opset).
        dynamo: use the dynamo-based exporter (torch.export first) instead of the TorchScript tracer.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    _check_names(input_names, example_inputs, hw_scales)
    module = module.eval()
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad():
        if dynamo:
            program = export_program(module, example_inputs, input_names, hw_scales, max_size)
            # The dynamo exporter implements opset >= 18 only; converting down to 17 fails on Pad.
            onnx_program = torch.onnx.export(program, example_inputs, dynamo=True, opset_version=max(opset, 18),
                                             input_names=list(input_names), output_names=list(output_names),
                                             verbose=False)
            onnx_program.save(str(tmp))
        else:
            axes = {name: {2: f"height_x{scale}", 3: f"width_x{scale}"} for name, scale in hw_scales.items()}
            with warnings.catch_warnings():
                # The tracer warns about Python-side shape checks it cannot record; they hold for every
                # size allowed by hw_scales (and onnx_parity verifies two sizes).
                warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=FutureWarning)
                warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
                torch.onnx.export(module, example_inputs, str(tmp), dynamo=False, opset_version=opset,
                                  input_names=list(input_names), output_names=list(output_names),
                                  dynamic_axes=axes)
    return path


def onnxruntime_run(path: str | Path, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run an ONNX file with onnxruntime's CPU provider; raises ImportError when onnxruntime is missing."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {name: np.ascontiguousarray(a) for name, a in feeds.items()})


def onnx_parity(module: nn.Module, path: str | Path, input_names: Sequence[str],
                cases: Sequence[tuple[torch.Tensor, ...]]) -> list[dict[str, Any]]:
    """Max |onnxruntime − eager| of the first output for each case (eval mode, no_grad)."""
    module = module.eval()
    report = []
    for inputs in cases:
        with torch.no_grad():
            expected = _first(module(*inputs)).cpu().numpy()
        got = onnxruntime_run(path, {n: t.cpu().numpy() for n, t in zip(input_names, inputs)})[0]
        report.append(_diff(inputs, expected, got))
    return report


def program_parity(program: torch.export.ExportedProgram, module: nn.Module,
                   cases: Sequence[tuple[torch.Tensor, ...]]) -> list[dict[str, Any]]:
    """Max |exported program − eager| of the first output for each case."""
    module = module.eval()
    runner = program.module()
    report = []
    for inputs in cases:
        with torch.no_grad():
            expected = _first(module(*inputs)).cpu().numpy()
            got = _first(runner(*inputs)).cpu().numpy()
        report.append(_diff(inputs, expected, got))
    return report


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def _diff(inputs: tuple[torch.Tensor, ...], expected: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    if expected.shape != got.shape:
        raise ValueError(f"exported output shape {got.shape} differs from eager {expected.shape}")
    diff = float(np.max(np.abs(expected - got))) if expected.size else 0.0
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    # relative to the output's scale (at least 1): float32 rounding grows with it (an untrained network's
    # raw alpha can reach hundreds), so 1e-4 on this measure is the meaningful parity criterion.
    return {"input_shapes": [list(t.shape) for t in inputs], "output_shape": list(expected.shape),
            "max_abs_diff": diff, "max_abs_expected": scale, "max_scaled_diff": diff / scale}
