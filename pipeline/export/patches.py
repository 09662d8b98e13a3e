"""Export-only replacements for two steps of A2U's kernel generator, so exports work at every input size.

1. Adaptive average pooling. The generator pools its input to k×k (k = 6) with `F.adaptive_avg_pool2d`.
With dynamic H, W

- the TorchScript ONNX exporter refuses it ("adaptive_avg_pool2d, input size not accessible": ONNX has only
  a *global* average pool);
- the dynamo ONNX exporter accepts it but bakes the bin widths of the example input into the graph: the
  exported model is silently wrong at other sizes (max |Δ| 0.38 on a bare pool at 32×32 after exporting at
  16×24; 0.019 on the self-guided A2U module).

`adaptive_avg_pool2d_by_matrices` computes the same bins (start ⌊i·H/k⌋, end ⌈(i+1)·H/k⌉) as two small
averaging matrices built from `arange(H)`, so every exporter records the size dependence: y = P_H · x · P_Wᵀ.
It costs N·C·H·W·k multiply-adds, so it is meant for the export path only.

2. Per-image depthwise correlation. `A2UKernelGenerator._depthwise` runs a grouped convolution whose
*weights* are computed from the input (u, v are predicted per image, groups = N·C). The TorchScript ONNX
exporter cannot export a convolution whose kernel shape is only known at run time ("ONNX export of
convolution for kernel of unknown shape"). `depthwise_correlation_plain` computes the same thing as a sum
over the k² window offsets of strided views × per-image filter taps (pad, slice, mul, add only).

Proposed change to models/ops/a2u_generator.py (owner: ops): use both functions when `_is_tracing()` is
true, as `models/ops/reassembly.py` already does for the reassembly. Until then `export_patches()` swaps
them in for the duration of an export (and restores the originals afterwards, also on error).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def _bin_matrix(size: int | torch.Tensor, bins: int, like: torch.Tensor) -> torch.Tensor:
    """bins × size averaging matrix of adaptive pooling along one axis."""
    positions = torch.arange(size, device=like.device)
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")
    inside = (positions.unsqueeze(0) >= start.unsqueeze(1)) & (positions.unsqueeze(0) < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def adaptive_avg_pool2d_by_matrices(x: torch.Tensor, output_size: int | tuple[int, int]) -> torch.Tensor:
    """Same result as `F.adaptive_avg_pool2d(x, output_size)` for N×C×H×W x (integer output sizes)."""
    if x.dim() != 4:
        raise ValueError(f"x must be N×C×H×W, got shape {tuple(x.shape)}")
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    if out_h is None or out_w is None:
        raise ValueError(f"output_size must be integers, got {output_size!r}")
    rows = _bin_matrix(x.shape[-2], out_h, x)
    cols = _bin_matrix(x.shape[-1], out_w, x)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def depthwise_correlation_plain(generator: nn.Module, x: torch.Tensor, filters: torch.Tensor,
                                stride: int) -> torch.Tensor:
    """Drop-in for `A2UKernelGenerator._depthwise`: x N×C×H×W, filters N×(d or d·C)×k×k -> (N·d)×C×h×w.

    Output (n, q, c, i, j) = Σ_{dy,dx<k} f[n, q(, c), dy, dx] · x_pad[n, c, stride·i + dy, stride·j + dx] with
    x padded by ⌊(k−1)/2⌋ before and (stride 2) the same / (stride 1) ⌊k/2⌋ after, as the original convolution.
    """
    n, c = x.shape[0], x.shape[1]
    k, d = generator.encode_kernel_size, generator.rank
    before = (k - 1) // 2
    after = before if stride == 2 else k // 2
    padded = F.pad(x, (before, after, before, after))
    out_h = (x.shape[2] + before + after - k) // stride + 1
    out_w = (x.shape[3] + before + after - k) // stride + 1
    taps = filters.reshape(n, d, -1, k, k)                     # (n, d, 1 or C, k, k)
    out = None
    for dy in range(k):
        for dx in range(k):
            view = padded[:, :, dy::stride, dx::stride][:, :, :out_h, :out_w].unsqueeze(1)   # (n, 1, C, h, w)
            term = view * taps[:, :, :, dy, dx].unsqueeze(-1).unsqueeze(-1)
            out = term if out is None else out + term
    return out.reshape(n * d, c, out_h, out_w)


@contextlib.contextmanager
def export_patches() -> Iterator[None]:
    """Within the block, the generator uses the two export-friendly forms above.

    `F.adaptive_avg_pool2d` with an output other than 1×1 uses the matrix form (global pooling keeps the
    original op, which both exporters translate to GlobalAveragePool), and `A2UKernelGenerator._depthwise`
    is `depthwise_correlation_plain`.
    """
    from models.ops.a2u_generator import A2UKernelGenerator

    original_pool, original_depthwise = F.adaptive_avg_pool2d, A2UKernelGenerator._depthwise

    def pool(x: torch.Tensor, output_size: int | tuple[int, int]) -> torch.Tensor:
        if output_size in (1, (1, 1), [1, 1]):
            return original_pool(x, output_size)
        return adaptive_avg_pool2d_by_matrices(x, output_size)

    F.adaptive_avg_pool2d = pool
    A2UKernelGenerator._depthwise = depthwise_correlation_plain
    try:
        yield
    finally:
        F.adaptive_avg_pool2d = original_pool
        A2UKernelGenerator._depthwise = original_depthwise
