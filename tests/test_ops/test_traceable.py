"""The export-friendly forms of the generator's pooling and depthwise correlation equal the eager originals
(the A2U generator uses them under ONNX export and torch.export)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.ops.kernels.depthwise import (adaptive_avg_pool2d_by_matrices, depthwise_correlation,
                                          depthwise_correlation_plain)


@pytest.mark.parametrize("height,width", [(16, 24), (18, 30), (7, 13), (5, 4), (6, 6)])
def test_matrix_adaptive_pooling_matches_torch(height: int, width: int) -> None:
    x = torch.randn(2, 3, height, width, dtype=torch.float64)
    torch.testing.assert_close(adaptive_avg_pool2d_by_matrices(x, 6), F.adaptive_avg_pool2d(x, 6))


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("stride", [1, 2])
def test_plain_depthwise_matches_the_grouped_convolution(shared: bool, stride: int) -> None:
    x = torch.randn(2, 32, 10, 14, dtype=torch.float64)
    filters = torch.randn(2, 1 if shared else 32, 6, 6, dtype=torch.float64)
    expected = depthwise_correlation(x, filters, 6, 1, stride)
    torch.testing.assert_close(depthwise_correlation_plain(x, filters, 6, 1, stride), expected)
