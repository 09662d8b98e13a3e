"""The three things we export, each with its inputs, dynamic-size description and parity cases.

- `a2u_self_guided`: the registered `A2U` module alone, kernels generated from its own input
  (x: N×C×h×w -> N×C×2h×2w);
- `a2u_paired`: an A2U operator pair as the matting network uses it: `down` on the encoder feature
  x (N×C×2h×2w) returns the A2D output and the A2U kernels, `up` reassembles a decoder feature z (N×C×h×w)
  with those kernels; outputs (low N×C×h×w, up N×C×2h×2w);
- `network_a2u`: `A2UMattingNet(upsampler='a2u')` (x: N×4×H×W, H and W multiples of 16 -> N×1×H×W).

`export_all` writes each as ONNX, checks onnxruntime against eager PyTorch at two sizes, and returns a
JSON-ready report (file, size, exporter, max |Δ| per size).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from pipeline.bench.export.core import HwScales, export_onnx, onnx_parity


@dataclass
class ExportForm:
    """A module to export, its input/output names, dynamic sizes, and an input builder for (H, W)."""

    module: nn.Module
    input_names: list[str]
    output_names: list[str]
    hw_scales: HwScales
    make_inputs: Callable[[int, int], tuple[torch.Tensor, ...]]


def _randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def build_forms(channels: int = 32, seed: int = 0) -> dict[str, ExportForm]:
    """The three export forms (module docstring); (H, W) passed to `make_inputs` is the high resolution."""
    import models  # noqa: F401  (registers A2U, the pairs and the network)
    from models.matting.network import A2UMattingNet, build_matting_pair
    from models.ops.pairs import PairRoundTrip
    from models.registry import MODELS

    torch.manual_seed(seed)
    self_guided = MODELS.build(dict(type="A2U", in_channels=channels)).eval()
    paired = PairRoundTrip(build_matting_pair("a2u", channels)).eval()
    network = A2UMattingNet(upsampler="a2u").eval()
    return {
        "a2u_self_guided": ExportForm(self_guided, ["x"], ["y"], {"x": 1},
                                      lambda h, w: (_randn(seed, 1, channels, h // 2, w // 2),)),
        "a2u_paired": ExportForm(paired, ["x", "z"], ["low", "up"], {"x": 2, "z": 1},
                                 lambda h, w: (_randn(seed, 1, channels, h, w),
                                               _randn(seed + 1, 1, channels, h // 2, w // 2))),
        "network_a2u": ExportForm(network, ["input"], ["alpha"], {"input": 16},
                                  lambda h, w: (_randn(seed, 1, 4, h, w),)),
    }


def export_all(out_dir: str | Path, sizes: tuple[tuple[int, int], ...] = ((32, 48), (64, 64)),
               channels: int = 32, dynamo: bool = False, names: list[str] | None = None,
               seed: int = 0) -> dict[str, Any]:
    """Export every form to `out_dir/<name>.onnx` and report onnxruntime parity at `sizes` (high-res H, W)."""
    out_dir = Path(out_dir)
    forms = build_forms(channels, seed)
    report: dict[str, Any] = {"exporter": "dynamo" if dynamo else "torchscript", "sizes": [list(s) for s in sizes],
                              "forms": {}}
    for name in names or list(forms):
        form = forms[name]
        start = time.perf_counter()
        path = export_onnx(form.module, form.make_inputs(*sizes[0]), out_dir / f"{name}.onnx", form.input_names,
                           form.output_names, form.hw_scales, dynamo=dynamo)
        export_s = time.perf_counter() - start
        parity = onnx_parity(form.module, path, form.input_names, [form.make_inputs(h, w) for h, w in sizes])
        report["forms"][name] = {"file": path.name, "bytes": path.stat().st_size, "export_s": round(export_s, 2),
                                 "hw_scales": dict(form.hw_scales), "parity": parity,
                                 "max_abs_diff": max(p["max_abs_diff"] for p in parity),
                                 "max_scaled_diff": max(p["max_scaled_diff"] for p in parity)}
    return report
