"""The two per-channel steps of the A2U kernel generator, each with an export-friendly form.

1. `adaptive_avg_pool2d`: k×k adaptive average pooling. Under export it uses `adaptive_avg_pool2d_by_matrices`,
   two small averaging matrices built from `arange(H)` and `arange(W)` (bins start ⌊i·H/k⌋, end ⌈(i+1)·H/k⌉, as
   `F.adaptive_avg_pool2d`). The TorchScript ONNX exporter refuses `adaptive_avg_pool2d` with a dynamic input
   size, and the dynamo exporter bakes the example input's bin widths into the graph (silently wrong at other
   sizes); the matrix form keeps the size dependence in the graph. It costs N·C·H·W·k multiply-adds: export only.
2. `depthwise_correlation`: the per-image depthwise correlation with filters predicted from the input (a grouped
   convolution with groups = N·C whose weights are data). Under export it uses `depthwise_correlation_plain`, a
   sum over the k² window offsets of strided views × filter taps: exporters cannot translate a convolution whose
   kernel is only known at run time.
"Export" means ONNX export or torch.export (`common.is_exporting`); jit tracing (FLOP counting) and
torch.compile use the eager ops.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.ops.kernels.common import is_exporting

__all__ = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_by_matrices", "depthwise_correlation",
           "depthwise_correlation_plain"]


def adaptive_avg_pool2d(x: torch.Tensor, output_size: int) -> torch.Tensor:
    """`F.adaptive_avg_pool2d(x, output_size)`, or its matrix form while exporting."""
    if is_exporting():
        return adaptive_avg_pool2d_by_matrices(x, output_size)
    return F.adaptive_avg_pool2d(x, output_size)


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


def depthwise_correlation(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, rank: int,
                          stride: int) -> torch.Tensor:
    """Per-image depthwise correlation: x N×C×H×W, filters N×(d or d·C)×k×k -> (N·d)×C×H/stride×W/stride.

    Output (n, q, c, i, j) = Σ_{dy,dx<k} f[n, q(, c), dy, dx] · x_pad[n, c, stride·i + dy, stride·j + dx],
    x padded by ⌊(k−1)/2⌋ before and ⌊(k−1)/2⌋ (stride 2) or ⌊k/2⌋ (stride 1) after: the window of output i
    covers input rows stride·i − ⌊(k−1)/2⌋ … stride·i + ⌊k/2⌋. N×d×k×k filters are shared by all channels.
    """
    if is_exporting():
        return depthwise_correlation_plain(x, filters, kernel_size, rank, stride)
    n, c, hgt, wid = x.shape
    k, d = kernel_size, rank
    weight = filters.view(n, d, -1, k, k).expand(n, d, c, k, k).transpose(1, 2).reshape(n * c * d, 1, k, k)
    before, after = (k - 1) // 2, k // 2
    if stride == 2:
        out = F.conv2d(x.reshape(1, n * c, hgt, wid), weight, stride=2, padding=before, groups=n * c)
    else:
        padded = F.pad(x.reshape(1, n * c, hgt, wid), (before, after, before, after))
        out = F.conv2d(padded, weight, groups=n * c)
    h, w = out.shape[-2:]
    return out.view(n, c, d, h, w).transpose(1, 2).reshape(n * d, c, h, w)


def depthwise_correlation_plain(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, rank: int,
                                stride: int) -> torch.Tensor:
    """Export-friendly twin of `depthwise_correlation` (sum of strided views × filter taps)."""
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
