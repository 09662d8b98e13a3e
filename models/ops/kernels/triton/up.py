"""`a2u_triton::reassemble_up`: the up reassembly (A2U/CARAFE) as a Triton op with a fused-kernel backward.

Semantics of `models.ops.kernels.up.reassemble_up` (and of the C++ op `a2u::reassemble_up`): x N×C×h×w,
kernels N×(G·s²)×rh×rw of x's dtype -> N×C×rh×rw, zero padding, no renormalisation. Backward:
`a2u_triton::reassemble_up_backward` -> (grad_x N×C×h×w, grad_K like kernels), each an empty tensor when not
needed. Imports triton: import through the package (`models.ops.kernels.triton`), which does so lazily.
"""
from __future__ import annotations

import torch
from torch.library import triton_op

from models.ops.kernels.common import register_pair_autograd
from models.ops.kernels.triton import kernels as tk

__all__ = ["reassemble_up", "reassemble_up_backward", "geometry"]


def geometry(kernel_size: int, scale_factor: int) -> tk.Geometry:
    """Window geometry of an odd s×s window centred on the source pixel ⌊I/r⌋ (see `kernels`)."""
    return tk.Geometry(ks=kernel_size, div=scale_factor, mul=1, pad=(kernel_size - 1) // 2)


@triton_op("a2u_triton::reassemble_up", mutates_args=())
def reassemble_up(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                  scale_factor: int) -> torch.Tensor:
    """x (N, C, h, w), kernels (N, G·s², r·h, r·w), one dtype -> (N, C, r·h, r·w), contiguous."""
    x, kernels = x.contiguous(), kernels.contiguous()
    n, c, h, w = x.shape
    out = x.new_empty(n, c, h * scale_factor, w * scale_factor)
    tk.forward(x, kernels, out, geometry(kernel_size, scale_factor), group_size)
    return out


@triton_op("a2u_triton::reassemble_up_backward", mutates_args=())
def reassemble_up_backward(grad: torch.Tensor, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                           group_size: int, scale_factor: int, need_x: bool,
                           need_kernels: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x like x or empty, grad_K like kernels or empty), both contiguous."""
    return tk.backward(grad, x, kernels, geometry(kernel_size, scale_factor), group_size, need_x, need_kernels)


register_pair_autograd(reassemble_up, reassemble_up_backward, "a2u::reassembly_up")
