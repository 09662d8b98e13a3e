"""Deployable exports (ONNX via `torch.onnx.export`, `torch.export.export`) with dynamic height and width."""
from pipeline.bench.export.core import (HwScales, export_onnx, export_program, onnx_parity, onnxruntime_run,
                                  program_parity)

__all__ = ["HwScales", "export_onnx", "export_program", "onnx_parity", "onnxruntime_run", "program_parity"]
