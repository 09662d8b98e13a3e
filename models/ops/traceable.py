"""Export-friendly forms of two steps of the A2U kernel generator (used while tracing / exporting).

1. `adaptive_avg_pool2d_by_matrices`: k×k adaptive average pooling as two small averaging matrices built from
   `arange(H)` and `arange(W)` (bins start ⌊i·H/k⌋, end ⌈(i+1)·H/k⌉, as `F.adaptive_avg_pool2d`). The
   TorchScript ONNX exporter refuses `adaptive_avg_pool2d` with a dynamic input size, and the dynamo exporter
   bakes the example input's bin widths into the graph (silently wrong at other sizes); the matrix form keeps
   the size dependence in the graph. It costs N·C·H·W·k multiply-adds: export path only.
2. `depthwise_correlation_plain`: the per-image depthwise correlation (filters predicted from the input, so a
   grouped conv whose weights are data) as a sum over the k² window offsets of strided views × filter taps;
   exporters cannot translate a convolution whose kernel is only known at run time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _bin_matrix(size: int | torch.Tensor, bins: int, like: torch.Tensor) -> torch.Tensor:
    """bins × size matrix whose row i averages the input positions of adaptive-pooling bin i."""
    positions = torch.arange(size, device=like.device)
    index = torch.arange(bins, device=like.device)
    start = torch.div(index * size, bins, rounding_mode="floor")
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode="floor")
    inside = (positions.unsqueeze(0) >= start.unsqueeze(1)) & (positions.unsqueeze(0) < end.unsqueeze(1))
    return inside.to(like.dtype) / (end - start).unsqueeze(1).to(like.dtype)


def adaptive_avg_pool2d_by_matrices(x: torch.Tensor, output_size: int) -> torch.Tensor:
    """Same result as `F.adaptive_avg_pool2d(x, output_size)` for N×C×H×W x and an integer square output."""
    rows = _bin_matrix(x.shape[-2], output_size, x)
    cols = _bin_matrix(x.shape[-1], output_size, x)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def depthwise_correlation_plain(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, rank: int,
                                stride: int) -> torch.Tensor:
    """x N×C×H×W, filters N×(d or d·C)×k×k -> (N·d)×C×h×w, as `A2UKernelGenerator._depthwise`.

    Output (n, q, c, i, j) = Σ_{dy,dx<k} f[n, q(, c), dy, dx] · x_pad[n, c, stride·i + dy, stride·j + dx], x padded
    by ⌊(k−1)/2⌋ before and ⌊(k−1)/2⌋ (stride 2) or ⌊k/2⌋ (stride 1) after, as the convolution it replaces.
    """
    n, c = x.shape[0], x.shape[1]
    k, d = kernel_size, rank
    before = (k - 1) // 2
    after = before if stride == 2 else k // 2
    padded = F.pad(x, (before, after, before, after))
    out_h = (x.shape[2] + before + after - k) // stride + 1
    out_w = (x.shape[3] + before + after - k) // stride + 1
    taps = filters.reshape(n, d, -1, k, k)
    out = None
    for dy in range(k):
        for dx in range(k):
            view = padded[:, :, dy::stride, dx::stride][:, :, :out_h, :out_w].unsqueeze(1)
            term = view * taps[:, :, :, dy, dx].unsqueeze(-1).unsqueeze(-1)
            out = term if out is None else out + term
    return out.reshape(n * d, c, out_h, out_w)
