"""An independent stand-in for the matting baseline pair (2×2 max-pool down, bilinear ×2 up), for tests."""
import torch.nn.functional as F

from models.ops.pairs import OperatorPair
from models.registry import OPERATOR_PAIRS

STANDIN = "_test-maxpool-bilinear"


class MaxPoolBilinearStandIn(OperatorPair):
    """Independent reference for the baseline pair: 2×2 max-pool down, bilinear ×2 up (align_corners False)."""

    def down(self, x):
        return F.max_pool2d(x, 2), None

    def up(self, x, state):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


OPERATOR_PAIRS.register_module(name=STANDIN, module=MaxPoolBilinearStandIn, force=True)
