"""A2U / A2D and every other up/downsampler, the toy and matting networks.

Importing this package registers every operator in MMEngine's root `MODELS` registry (so
`mmcv.cnn.build_upsample_layer(dict(type='A2U', ...))` works) and every operator pair in `OPERATOR_PAIRS`.
It imports nothing from `pipeline` or `stages`.
"""
from models import ops  # noqa: F401  (registers operators and pairs)
from models import matting, toy  # noqa: F401,E402  (registers the matting network, its wrapper and the toy net)
from models.registry import MODELS, OPERATOR_PAIRS

__all__ = ["MODELS", "OPERATOR_PAIRS"]
