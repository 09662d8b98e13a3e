"""Max-unpooling via scatter equals torch's max_unpool2d and stays traceable (for FLOPs counting and export)."""
import torch
import torch.nn.functional as F

from models.ops.basic import max_unpool2x
from models.ops.pairs import build_pair


def test_max_unpool2x_matches_torch_and_traces() -> None:
    x = torch.randn(2, 3, 6, 10, dtype=torch.float64)
    low, idx = F.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(max_unpool2x(low, idx), F.max_unpool2d(low, idx, 2))
    pair = build_pair("maxunpool", 3)
    traced = torch.jit.trace(lambda t: pair.up(*pair.down(t)), x)
    y = torch.randn(1, 3, 4, 8, dtype=torch.float64)
    assert torch.equal(traced(y), pair.up(*pair.down(y)))
