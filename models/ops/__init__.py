"""Up/downsampling operators and their pairs (importing registers them).

Layers (style G2): `a2u_generator.A2UKernelGenerator` (kernels) -> `kernels.a2u_upsample` /
`a2d_downsample` (functional ops) -> registered modules `A2U`, `A2D`, `CARAFETorch`, `IndexNetDown`,
`IndexNetUp`, `DeconvUp`, ... in MMEngine's root `MODELS`; pairs in `OPERATOR_PAIRS` (`pairs.py`).
"""
from models.ops import basic, carafe, indexnet  # noqa: F401  (register the other operators)
from models.ops.a2u import A2D, A2U
from models.ops.a2u_generator import A2UKernelGenerator
from models.ops.pairs import PAIR_NAMES, OperatorPair, build_pair, count_parameters, pair_keywords
from models.ops.kernels import a2d_downsample, a2u_upsample

__all__ = ["PAIR_NAMES", "OperatorPair", "build_pair", "pair_keywords", "A2U", "A2D", "A2UKernelGenerator",
           "a2u_upsample", "a2d_downsample", "count_parameters"]
