"""The export-only forms of the generator's pooling and depthwise correlation equal the eager originals."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.export.patches import adaptive_avg_pool2d_by_matrices, depthwise_correlation_plain, export_patches


@pytest.mark.parametrize("height,width", [(16, 24), (18, 30), (7, 13), (5, 4), (6, 6)])
def test_matrix_adaptive_pooling_matches_torch(height: int, width: int) -> None:
    x = torch.randn(2, 3, height, width, dtype=torch.float64)
    expected = F.adaptive_avg_pool2d(x, 6)
    torch.testing.assert_close(adaptive_avg_pool2d_by_matrices(x, 6), expected)
    torch.testing.assert_close(adaptive_avg_pool2d_by_matrices(x, (3, 5)), F.adaptive_avg_pool2d(x, (3, 5)))


def test_matrix_adaptive_pooling_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="N×C×H×W"):
        adaptive_avg_pool2d_by_matrices(torch.zeros(3, 4, 4), 2)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("stride", [1, 2])
def test_plain_depthwise_matches_the_generator_convolution(shared: bool, stride: int) -> None:
    from models.ops.a2u_generator import A2UKernelGenerator

    generator = A2UKernelGenerator(32, shared=shared).double()
    x = torch.randn(2, 32, 10, 14, dtype=torch.float64)
    filters = torch.randn(2, 1 if shared else 32, 6, 6, dtype=torch.float64)
    expected = generator._depthwise(x, filters, stride)
    torch.testing.assert_close(depthwise_correlation_plain(generator, x, filters, stride), expected)


def test_export_patches_restore_the_originals_even_on_error() -> None:
    from models.ops.a2u_generator import A2UKernelGenerator

    pool, depthwise = F.adaptive_avg_pool2d, A2UKernelGenerator._depthwise
    with pytest.raises(RuntimeError, match="boom"):
        with export_patches():
            assert F.adaptive_avg_pool2d is not pool
            raise RuntimeError("boom")
    assert F.adaptive_avg_pool2d is pool and A2UKernelGenerator._depthwise is depthwise
