"""Up/downsampling operators and their pairs (importing registers them).

Layers (style G2): `a2u.A2UKernelGenerator` (kernels) -> `kernels.a2u_upsample` / `a2d_downsample` (functional
reassembly; `a2u_upsample` is `kernels.reassemble_up`, which CARAFE uses too) -> registered modules `A2U`, `A2D`,
`CARAFETorch`, `IndexNetDown`, `IndexNetUp`, `DeconvUp`, ..., and A2U's successors `FADE`, `SAPA`, `DySample`
(`fade.py`, `sapa.py`, `dysample.py`) in MMEngine's root `MODELS`; operator pairs in
`OPERATOR_PAIRS` (`pairs.py`). Modules name their hyper-parameters as mmcv's `CARAFEPack` (`scale_factor`,
`up_kernel`, `up_group`, `encoder_kernel`), store them on `self` and have `init_weights()`.
"""
from models.ops import basic, carafe, indexnet  # noqa: F401  (register the other operators)
from models.ops.a2u import A2D, A2U, A2UKernelGenerator
from models.ops.dysample import DySample
from models.ops.fade import FADE
from models.ops.kernels import a2d_downsample, a2u_upsample, reassemble_up
from models.ops.pairs import (ABLATION_PAIR_NAMES, PAIR_NAMES, SUCCESSOR_PAIR_NAMES, OperatorPair, build_pair,
                              count_parameters, pair_keywords)
from models.ops.sapa import SAPA

__all__ = ["PAIR_NAMES", "ABLATION_PAIR_NAMES", "SUCCESSOR_PAIR_NAMES", "OperatorPair", "build_pair", "pair_keywords",
           "count_parameters", "A2U", "A2D", "A2UKernelGenerator", "FADE", "SAPA", "DySample", "reassemble_up",
           "a2u_upsample", "a2d_downsample"]
