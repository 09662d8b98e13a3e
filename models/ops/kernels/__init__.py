"""Fast reassembly kernels of the up/down operators and their traceable (export-friendly) forms.

- `up.py`: `reassemble_up` (CARAFE-naive upsampling reassembly, shared by A2U and CARAFE; `a2u_upsample` is the
  same function under the paper's name), `reassemble_up_plain` (tracing/export), `reassemble_up_unfold`
  (benchmark reference), the blocked forward/backward and their autograd Function;
- `down.py`: the same for A2D's even-window stride-2 reassembly (`a2d_downsample`, `_plain`, `_unfold`);
- `small.py`: channels-last upsampling reassembly for small maps (≤ `common.SMALL_MAP_PIXELS` input pixels),
  which `up.py` dispatches to on CPU;
- `depthwise.py`: the A2U generator's adaptive pooling (+ global mean) and per-image depthwise correlations (an
  autograd Function with a cheap filter gradient), with export forms;
- `fused_cpu.py`: loader of the fused C++ CPU ops `a2u::reassemble_up` / `a2u::reassemble_down` and the
  generator's `a2u::correlate` and `a2u::embed_product` (built at install time by `models/ops/build_ext.py`),
  which `up.py` / `down.py` / `depthwise.py` / `a2u.py` use on CPU when built (else one warning);
- `triton/`: Triton (CUDA) reassembly ops `a2u_triton::reassemble_up` / `reassemble_down` with fused gather-form
  backward kernels, which `up.py` / `down.py` use for CUDA tensors in eager mode when triton imports (imported
  lazily: never on CPU-only calls);
- `common.py`: execution-mode checks, argument checks, blocking and clipping helpers.
"""
from models.ops.kernels.depthwise import (adaptive_avg_pool2d, adaptive_avg_pool2d_by_matrices,
                                          depthwise_correlation, depthwise_correlation_plain,
                                          depthwise_correlations, pool_and_mean)
from models.ops.kernels.down import a2d_downsample, a2d_downsample_plain, a2d_downsample_unfold
from models.ops.kernels.up import a2u_upsample, reassemble_up, reassemble_up_plain, reassemble_up_unfold

__all__ = ["reassemble_up", "a2u_upsample", "reassemble_up_plain", "reassemble_up_unfold", "a2d_downsample",
           "a2d_downsample_plain", "a2d_downsample_unfold", "adaptive_avg_pool2d", "adaptive_avg_pool2d_by_matrices",
           "depthwise_correlation", "depthwise_correlation_plain", "depthwise_correlations",
           "pool_and_mean"]
