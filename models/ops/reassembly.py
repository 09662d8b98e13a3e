"""Functional A2U upsampling and A2D downsampling (spec 2.3–2.4), pure PyTorch.

Paper: Dai, Lu, Shen, "Learning Affinity-Aware Upsampling for Deep Image Matting", CVPR 2021
(https://arxiv.org/abs/2011.14288). The official code uses CUDA ops adapted from CARAFE-naive; these functions
have the same semantics on any device:

- `a2u_upsample`: out[c, i, j] = Σ_{a,b} K[g·s² + (a+R)·s + (b+R), i, j] · x[c, ⌊i/r⌋+a, ⌊j/r⌋+b], R = (s−1)/2;
- `a2d_downsample`: out[c, i, j] = Σ_{dy,dx<k} K[g·k² + dy·k + dx, i, j] · x[c, 2i−(k−2)/2+dy, 2j−(k−2)/2+dx];

with g = ⌊c / (C/G)⌋ and out-of-map terms skipped (zero padding, no renormalisation).

Three execution paths give the same numbers:
- gradients needed (eager): `reassembly_fused`'s autograd Functions (cache-blocked offset loop of in-place
  addcmul, explicit backward that saves only the inputs);
- no gradients needed (eager): the same blocked forward, called directly;
- tracing / scripting / ONNX export / torch.export / torch.compile: a plain out-of-place formulation over the
  same offsets (`*_plain`), which every tracer understands.
`*_unfold` are the obvious unfold + nearest-repeat formulations, kept as references for benchmarks.

Dtypes: under autocast both operands are cast to the autocast dtype (as a convolution would be); otherwise
to their promoted dtype. Kernels normalised in float32 under autocast are thus reassembled in fp16/bf16.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from models.ops import reassembly_fused as fused

__all__ = ["a2u_upsample", "a2d_downsample", "a2u_upsample_plain", "a2d_downsample_plain",
           "a2u_upsample_unfold", "a2d_downsample_unfold"]


def _is_tracing() -> bool:
    """True under torch.jit tracing/scripting, ONNX export, torch.export or torch.compile."""
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return True
    compiler = getattr(torch, "compiler", None)
    if compiler is not None:
        if compiler.is_compiling():
            return True
        is_exporting = getattr(compiler, "is_exporting", None)
        if is_exporting is not None and is_exporting():
            return True
    return False


def _check_inputs(op: str, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                  kernel_hw: tuple[int, int]) -> None:
    """Shared shape validation; every message names the argument and the expected value."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"{op}: x must be a 4-D N×C×H×W tensor, got {getattr(x, 'shape', type(x))}")
    if not isinstance(kernels, torch.Tensor) or kernels.dim() != 4:
        raise ValueError(f"{op}: kernels must be a 4-D tensor, got {getattr(kernels, 'shape', type(kernels))}")
    if not isinstance(group_size, int) or group_size < 1 or x.shape[1] % group_size:
        raise ValueError(f"{op}: group_size must be a positive divisor of the {x.shape[1]} channels of x, "
                         f"got {group_size}")
    expected = (x.shape[0], group_size * kernel_size ** 2, *kernel_hw)
    if tuple(kernels.shape) != expected:
        raise ValueError(f"{op}: kernels must have shape {expected} (N, group_size·kernel_size², H, W) for x of "
                         f"shape {tuple(x.shape)}, got {tuple(kernels.shape)}")
    if kernels.device != x.device:
        raise ValueError(f"{op}: kernels are on {kernels.device} but x is on {x.device}")


def _common_dtype(x: torch.Tensor, kernels: torch.Tensor) -> torch.dtype:
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type) and x.dtype != torch.float64:
        return torch.get_autocast_dtype(device_type)
    return torch.promote_types(x.dtype, kernels.dtype)


def _check_up_args(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                   scale_factor: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"a2u_upsample: kernel_size must be a positive odd int, got {kernel_size!r}")
    if not isinstance(scale_factor, int) or scale_factor < 1:
        raise ValueError(f"a2u_upsample: scale_factor must be a positive int, got {scale_factor!r}")
    h, w = (x.shape[-2], x.shape[-1]) if isinstance(x, torch.Tensor) and x.dim() == 4 else (0, 0)
    _check_inputs("a2u_upsample", x, kernels, kernel_size, group_size, (h * scale_factor, w * scale_factor))


def _check_down_args(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> None:
    if not isinstance(kernel_size, int) or kernel_size < 2 or kernel_size % 2:
        raise ValueError(f"a2d_downsample: kernel_size must be a positive even int, got {kernel_size!r}")
    if isinstance(x, torch.Tensor) and x.dim() == 4 and (x.shape[-2] % 2 or x.shape[-1] % 2):
        raise ValueError(f"a2d_downsample: x must have even height and width, got {tuple(x.shape[-2:])}")
    h, w = (x.shape[-2] // 2, x.shape[-1] // 2) if isinstance(x, torch.Tensor) and x.dim() == 4 else (0, 0)
    _check_inputs("a2d_downsample", x, kernels, kernel_size, group_size, (h, w))


def a2u_upsample(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1,
                 scale_factor: int = 2) -> torch.Tensor:
    """Reassemble x with per-pixel upsampling kernels (CARAFE-naive semantics).

    Args:
        x (Tensor): low-resolution feature, (N, C, h, w); C divisible by `group_size`.
        kernels (Tensor): (N, G·s², r·h, r·w), channel g·s² + e is window entry e of group g (row-major).
        kernel_size (int): s, odd.
        group_size (int): G, kernel groups. Default: 1.
        scale_factor (int): r. Default: 2.

    Returns:
        Tensor: (N, C, r·h, r·w).
    """
    _check_up_args(x, kernels, kernel_size, group_size, scale_factor)
    dtype = _common_dtype(x, kernels)
    x, kernels = x.to(dtype), kernels.to(dtype)
    if _is_tracing():
        return a2u_upsample_plain(x, kernels, kernel_size, group_size, scale_factor)
    if torch.is_grad_enabled() and (x.requires_grad or kernels.requires_grad):
        return fused.A2UUpsampleFunction.apply(x, kernels, kernel_size, group_size, scale_factor)
    return fused.up_forward(x, kernels, kernel_size, group_size, scale_factor)


def a2d_downsample(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1) -> torch.Tensor:
    """Affinity-aware ×2 downsampling with an asymmetric even window.

    Args:
        x (Tensor): high-resolution feature, (N, C, H, W), H and W even.
        kernels (Tensor): (N, G·k², H/2, W/2), channel g·k² + dy·k + dx.
        kernel_size (int): k, even; the window of output (i, j) covers rows 2i−(k−2)/2 … 2i+k/2.
        group_size (int): G. Default: 1.

    Returns:
        Tensor: (N, C, H/2, W/2).
    """
    _check_down_args(x, kernels, kernel_size, group_size)
    dtype = _common_dtype(x, kernels)
    x, kernels = x.to(dtype), kernels.to(dtype)
    if _is_tracing():
        return a2d_downsample_plain(x, kernels, kernel_size, group_size)
    if torch.is_grad_enabled() and (x.requires_grad or kernels.requires_grad):
        return fused.A2DDownsampleFunction.apply(x, kernels, kernel_size, group_size)
    return fused.down_forward(x, kernels, kernel_size, group_size)


def a2u_upsample_plain(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1,
                       scale_factor: int = 2) -> torch.Tensor:
    """Out-of-place twin of `a2u_upsample` (zero pad, sum of shifted views × phase kernels): export-friendly."""
    n, c, h, w = x.shape
    radius = (kernel_size - 1) // 2
    r2 = scale_factor * scale_factor
    padded = F.pad(x, (radius, radius, radius, radius)).reshape(n, group_size, c // group_size, 1,
                                                                h + 2 * radius, w + 2 * radius)
    phase_kernels = F.pixel_unshuffle(kernels, scale_factor).reshape(n, group_size, 1, kernel_size ** 2, r2, h, w)
    out = None
    for e, a, b in fused.up_offsets(kernel_size):
        term = padded[..., radius + a:radius + a + h, radius + b:radius + b + w] * phase_kernels[:, :, :, e]
        out = term if out is None else out + term
    return F.pixel_shuffle(out.reshape(n, c * r2, h, w), scale_factor)


def a2d_downsample_plain(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                         group_size: int = 1) -> torch.Tensor:
    """Out-of-place twin of `a2d_downsample` (pad, space-to-depth, sum of shifted phase views): export-friendly."""
    n, c, hh, ww = x.shape
    h, w = hh // 2, ww // 2
    before = (kernel_size - 2) // 2
    lead, trail = (before + 1) // 2, kernel_size // 4  # low-res rows of padding the window reaches before / after
    padded = F.pad(x, (2 * lead, 2 * trail, 2 * lead, 2 * trail))
    phases = F.pixel_unshuffle(padded, 2).reshape(n, group_size, c // group_size, 4, h + lead + trail,
                                                  w + lead + trail)
    kg = kernels.reshape(n, group_size, 1, kernel_size ** 2, h, w)
    out = None
    for e, p, m, q, s in fused.down_offsets(kernel_size):
        view = phases[:, :, :, 2 * p + q, lead + m:lead + m + h, lead + s:lead + s + w]
        term = view * kg[:, :, :, e]
        out = term if out is None else out + term
    return out.reshape(n, c, h, w)


def a2u_upsample_unfold(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int = 1,
                        scale_factor: int = 2) -> torch.Tensor:
    """Reference: unfold s×s windows, repeat them r× (nearest), weight by the kernels, sum (memory-hungry)."""
    _check_up_args(x, kernels, kernel_size, group_size, scale_factor)
    n, c, h, w = x.shape
    windows = F.unfold(x, kernel_size, padding=kernel_size // 2).view(n, group_size, c // group_size,
                                                                       kernel_size ** 2, h, w)
    windows = windows.repeat_interleave(scale_factor, dim=4).repeat_interleave(scale_factor, dim=5)
    kg = kernels.view(n, group_size, 1, kernel_size ** 2, h * scale_factor, w * scale_factor)
    return (windows * kg).sum(dim=3).view(n, c, h * scale_factor, w * scale_factor)


def a2d_downsample_unfold(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int,
                          group_size: int = 1) -> torch.Tensor:
    """Reference: pad (k−2)/2 before and k/2 after, unfold k×k with stride 2, weight by the kernels, sum."""
    _check_down_args(x, kernels, kernel_size, group_size)
    n, c, hh, ww = x.shape
    before, after = (kernel_size - 2) // 2, kernel_size // 2
    padded = F.pad(x, (before, after, before, after))
    windows = F.unfold(padded, kernel_size, stride=2).view(n, group_size, c // group_size, kernel_size ** 2,
                                                           hh // 2, ww // 2)
    kg = kernels.view(n, group_size, 1, kernel_size ** 2, hh // 2, ww // 2)
    return (windows * kg).sum(dim=3).view(n, c, hh // 2, ww // 2)
