"""`a2u_triton::reassemble_down`: A2D's even-window stride-2 reassembly as a Triton op with a fused backward.

Semantics of `models.ops.kernels.down.a2d_downsample` (and of the C++ op `a2u::reassemble_down`): x N×C×H×W
(H, W even), kernels N×(G·k²)×H/2×W/2 of x's dtype -> N×C×H/2×W/2; the window of output (i, j) covers rows
2i−(k−2)/2 … 2i+k/2, out-of-map taps skipped. Backward: `a2u_triton::reassemble_down_backward`.
"""
from __future__ import annotations

import torch
from torch.library import triton_op

from models.ops.kernels.common import register_pair_autograd
from models.ops.kernels.triton import kernels as tk

__all__ = ["reassemble_down", "reassemble_down_backward", "geometry"]


def geometry(kernel_size: int) -> tk.Geometry:
    """Window geometry of the even k×k stride-2 window starting at row 2i − (k−2)/2 (see `kernels`)."""
    return tk.Geometry(ks=kernel_size, div=1, mul=2, pad=(kernel_size - 2) // 2)


@triton_op("a2u_triton::reassemble_down", mutates_args=())
def reassemble_down(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> torch.Tensor:
    """x (N, C, H, W), kernels (N, G·k², H/2, W/2), one dtype -> (N, C, H/2, W/2), contiguous."""
    x, kernels = x.contiguous(), kernels.contiguous()
    n, c, hh, ww = x.shape
    out = x.new_empty(n, c, hh // 2, ww // 2)
    tk.forward(x, kernels, out, geometry(kernel_size), group_size)
    return out


@triton_op("a2u_triton::reassemble_down_backward", mutates_args=())
def reassemble_down_backward(grad: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                             group_size: int, need_x: bool, need_kernels: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x like x or empty, grad_K like kernels or empty), both contiguous."""
    return tk.backward(grad, x, kernels, geometry(kernel_size), group_size, need_x, need_kernels)


register_pair_autograd(reassemble_down, reassemble_down_backward, "a2u::reassembly_down")
