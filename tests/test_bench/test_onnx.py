"""ONNX (opset 17, dynamic H and W) and torch.export of A2U and the matting network, checked at two sizes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.bench.export import export_onnx, export_program, onnx_parity, program_parity
from pipeline.bench.export.forms import build_forms, export_all

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: ONNX parity cannot be checked")
pytest.importorskip("onnx", reason="onnx is not installed")

SIZES = ((32, 48), (64, 64))
#: on max |Δ| / max(1, max |output|): plain |Δ| for outputs of order 1 (the A2U modules here)
TOLERANCE = 1e-4


class Reassemble(nn.Module):
    """The bare reassembly ops with given kernels: A2D then A2U."""

    def forward(self, x: torch.Tensor, k_up: torch.Tensor, k_down: torch.Tensor) -> torch.Tensor:
        from models.ops.kernels import a2d_downsample, a2u_upsample

        return a2u_upsample(a2d_downsample(x, k_down, 6), k_up, 3)


def _reassembly_inputs(height: int, width: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(height * width)
    return (torch.randn(1, 8, height, width, generator=gen),
            torch.randn(1, 9, height, width, generator=gen).softmax(1),
            torch.randn(1, 36, height // 2, width // 2, generator=gen).softmax(1))


def test_reassembly_ops_export_with_dynamic_size(tmp_path) -> None:
    names = ["x", "k_up", "k_down"]
    path = export_onnx(Reassemble(), _reassembly_inputs(*SIZES[0]), tmp_path / "reassemble.onnx", names, ["y"],
                       {"x": 2, "k_up": 2, "k_down": 1})
    report = onnx_parity(Reassemble(), path, names, [_reassembly_inputs(h, w) for h, w in SIZES])
    assert [r["output_shape"] for r in report] == [[1, 8, 32, 48], [1, 8, 64, 64]]
    assert max(r["max_scaled_diff"] for r in report) < TOLERANCE


def test_a2u_module_self_guided_and_paired_onnx_parity(tmp_path) -> None:
    report = export_all(tmp_path, SIZES, names=["a2u_self_guided", "a2u_paired"])
    for name, form in report["forms"].items():
        assert (tmp_path / form["file"]).is_file(), name
        assert len(form["parity"]) == 2
        assert form["max_scaled_diff"] < TOLERANCE, (name, form["parity"])
    assert report["forms"]["a2u_self_guided"]["parity"][1]["output_shape"] == [1, 32, 64, 64]
    assert report["forms"]["a2u_paired"]["parity"][0]["input_shapes"] == [[1, 32, 32, 48], [1, 32, 16, 24]]


def test_export_rejects_sizes_that_break_the_declared_multiples(tmp_path) -> None:
    with pytest.raises(ValueError, match="hw scale 2"):
        export_onnx(Reassemble(), (torch.zeros(1, 8, 31, 48), torch.zeros(1, 9, 31, 48), torch.zeros(1, 36, 15, 24)),
                    tmp_path / "bad.onnx", ["x", "k_up", "k_down"], ["y"], {"x": 2, "k_up": 2, "k_down": 1})
    with pytest.raises(ValueError, match="opset"):
        export_onnx(Reassemble(), _reassembly_inputs(32, 48), tmp_path / "bad.onnx", ["x", "k_up", "k_down"], ["y"],
                    {"x": 2}, opset=13)


def test_torch_export_of_self_guided_a2u_with_dynamic_shapes() -> None:
    form = build_forms()["a2u_self_guided"]
    program = export_program(form.module, form.make_inputs(*SIZES[0]), form.input_names, form.hw_scales)
    report = program_parity(program, form.module, [form.make_inputs(h, w) for h, w in SIZES])
    assert max(r["max_scaled_diff"] for r in report) < TOLERANCE


@pytest.mark.slow
def test_matting_network_onnx_parity(tmp_path) -> None:
    report = export_all(tmp_path, SIZES, names=["network_a2u"])
    form = report["forms"]["network_a2u"]
    assert [p["output_shape"] for p in form["parity"]] == [[1, 1, 32, 48], [1, 1, 64, 64]]
    assert form["max_scaled_diff"] < TOLERANCE, form["parity"]
