"""Fused CPU ops (`a2u::reassemble_up`, `a2u::reassemble_down`, `a2u::correlate`, `a2u::embed_product`): loader,
fake and autograd registration.

The C++ library (`models/ops/csrc/a2u_reassembly.cpp`, `a2u_correlation.cpp` and `a2u_embedding.cpp`) is compiled
at install time by `python -m models.ops.build_ext` (the Makefile's install step) and only *loaded* here.
`up.reassemble_up` and `down.a2d_downsample` call the reassembly ops for CPU tensors in eager mode (`use_fused`),
`depthwise.depthwise_correlations` calls the generator's correlation op (`use_fused_correlation`) and
`A2UKernelGenerator._embed` its GroupNorm-LeakyReLU-product op (`use_fused_embedding`); while tracing or exporting
the plain forms run (standard ops only in exported graphs), and on other devices the existing paths run.

Each op is one `torch.library` op with a fake (meta) implementation and an autograd formula whose backward is
the fused backward op (grad_x and grad_K in one pass, no atomics), so autograd, `torch.compile` (when called
directly) and `torch.library.opcheck` see one op.

Fallback: when the library is missing, stale (other torch version or source) or fails to load, the pure-PyTorch
kernels run and ONE warning says why and how to build it. `A2U_FUSED_CPU=0` in the environment, or
`set_fused_enabled(False)` / the `fallback()` context manager, forces the pure-PyTorch path (one warning too).
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from models.ops.kernels.common import BackendSwitch, is_tracing, register_pair_autograd

__all__ = ["available", "use_fused", "use_fused_correlation", "set_fused_enabled", "fallback", "unavailable_reason",
           "backend", "correlate", "use_fused_embedding", "embed_product", "ENV_VAR", "BUILD_HINT"]

#: Environment variable: "0" (or "off", "false") forces the pure-PyTorch path.
ENV_VAR = "A2U_FUSED_CPU"
BUILD_HINT = "build it with `make venv` or `.venv/bin/python -m models.ops.build_ext`"
#: dtypes the C++ kernels take (accumulation in float32, float64 for float64)
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
#: dtypes of the correlation op (accumulation in the input dtype)
CORRELATION_DTYPES = (torch.float32, torch.float64)

_state: dict = {"loaded": None, "reason": None, "warned": set()}
_switch = BackendSwitch(ENV_VAR)


def _load() -> bool:
    if _state["loaded"] is not None:
        return _state["loaded"]
    _state["loaded"] = False
    try:
        from models.ops import build_ext

        reason = build_ext.stale_reason()
        if reason is None:
            if not all(hasattr(torch.ops.a2u, op)
                       for op in ("reassemble_up_backward", "correlate_backward", "embed_product_backward")):
                torch.ops.load_library(str(build_ext.LIBRARY))
            _register()
            _state["loaded"] = True
        else:
            _state["reason"] = reason
    except Exception as error:   # a library that does not load (ABI, missing symbols): fall back, with the reason
        _state["reason"] = f"failed to load ({type(error).__name__}: {error})"
    return _state["loaded"]


def available() -> bool:
    """Whether the fused CPU ops are built and loaded."""
    return _load()


def unavailable_reason() -> str | None:
    return None if _load() else _state["reason"]


def set_fused_enabled(enabled: bool | None) -> None:
    """Force the fused CPU ops on (when built) or off; None returns to the environment's choice."""
    _switch.force(enabled)


def fallback() -> contextlib.AbstractContextManager[None]:
    """Run the pure-PyTorch reassembly and correlation inside the block (for tests and comparisons)."""
    return _switch.off()


def reset_warnings() -> None:
    """Let the fallback warnings fire again (tests)."""
    _state["warned"].clear()


def _warn_once(key: str, message: str) -> None:
    if key not in _state["warned"]:
        _state["warned"].add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=5)   # the op's caller


def use_fused(x: torch.Tensor) -> bool:
    """Whether this eager call on x takes the fused C++ op (CPU, not tracing/exporting, supported dtype)."""
    if x.device.type != "cpu" or x.dtype not in DTYPES or is_tracing():
        return False
    return _enabled_and_loaded()


def use_fused_correlation(x: torch.Tensor, filters: torch.Tensor) -> bool:
    """Whether this eager correlation takes `a2u::correlate`: CPU, float32/float64 x and filters of one dtype, not
    autocast, not tracing/exporting, and the op built and enabled."""
    if (x.device.type != "cpu" or filters.device.type != "cpu" or x.dtype not in CORRELATION_DTYPES
            or filters.dtype != x.dtype or torch.is_autocast_enabled("cpu") or is_tracing()):
        return False
    return _enabled_and_loaded()


def use_fused_embedding(e_u: torch.Tensor, e_v: torch.Tensor, norm_u: torch.nn.GroupNorm,
                        norm_v: torch.nn.GroupNorm) -> bool:
    """Whether the generator's steps 3–4 on e_u, e_v (B×C×h×w) take `a2u::embed_product`: CPU, float32/float64
    maps and affine GroupNorms of that dtype with the same groups and eps, not autocast, not tracing/exporting,
    and the op built and enabled."""
    params = (norm_u.weight, norm_u.bias, norm_v.weight, norm_v.bias)
    if (e_u.device.type != "cpu" or e_u.dtype not in CORRELATION_DTYPES or e_v.dtype != e_u.dtype
            or e_v.device.type != "cpu" or any(p is None or p.dtype != e_u.dtype or p.device.type != "cpu"
                                               for p in params)
            or (norm_u.num_groups, norm_u.eps) != (norm_v.num_groups, norm_v.eps)
            or torch.is_autocast_enabled("cpu") or is_tracing()):
        return False
    return _enabled_and_loaded()


def _enabled_and_loaded() -> bool:
    """Enabled (environment, `set_fused_enabled`, `fallback()`) and loaded; warns once why not."""
    if not _switch.enabled():
        _warn_once("forced", f"a2u: fused CPU reassembly disabled ({ENV_VAR}=0 or fused_cpu.set_fused_enabled/"
                             f"fallback()); the pure-PyTorch reassembly and correlation run (slower)")
        return False
    if not _load():
        _warn_once("missing", f"a2u: fused CPU reassembly ops unavailable: {_state['reason']}; the pure-PyTorch "
                              f"reassembly and correlation run (slower); {BUILD_HINT}")
        return False
    return True


def backend(device_type: str = "cpu") -> str:
    """Which backend eager reassembly/correlation calls on `device_type` use: 'fused-cpp', 'eager' (pure
    PyTorch)."""
    if device_type != "cpu":
        return "eager"
    return "fused-cpp" if _switch.enabled() and _load() else "eager"


# ------------------------------------------------------------------------------------- op registration


def _register() -> None:
    if _state.get("registered"):
        return
    lib_ops = torch.ops.a2u

    @torch.library.register_fake("a2u::reassemble_up")
    def _up_fake(x, kernels, kernel_size, group_size, scale_factor):
        n, c, h, w = x.shape
        return x.new_empty(n, c, h * scale_factor, w * scale_factor)

    @torch.library.register_fake("a2u::reassemble_up_backward")
    def _up_backward_fake(grad, x, kernels, kernel_size, group_size, scale_factor, need_x, need_kernels):
        return (torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0),
                torch.empty_like(kernels, memory_format=torch.contiguous_format) if need_kernels
                else x.new_empty(0))

    @torch.library.register_fake("a2u::reassemble_down")
    def _down_fake(x, kernels, kernel_size, group_size):
        n, c, hh, ww = x.shape
        return x.new_empty(n, c, hh // 2, ww // 2)

    @torch.library.register_fake("a2u::reassemble_down_backward")
    def _down_backward_fake(grad, x, kernels, kernel_size, group_size, need_x, need_kernels):
        return (torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0),
                torch.empty_like(kernels, memory_format=torch.contiguous_format) if need_kernels
                else x.new_empty(0))

    @torch.library.register_fake("a2u::correlate")
    def _correlate_fake(x, filters, kernel_size, sets, stride):
        n, c, hgt, wid = x.shape
        before = (kernel_size - 1) // 2
        after = before if stride == 2 else kernel_size // 2
        return x.new_empty(sets, n, c, (hgt + before + after - kernel_size) // stride + 1,
                           (wid + before + after - kernel_size) // stride + 1)

    @torch.library.register_fake("a2u::correlate_backward")
    def _correlate_backward_fake(grad, x, filters, kernel_size, sets, stride, need_x, need_filters):
        return (torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else x.new_empty(0),
                torch.empty_like(filters, memory_format=torch.contiguous_format) if need_filters
                else x.new_empty(0))

    @torch.library.register_fake("a2u::embed_product")
    def _embed_fake(e_u, e_v, gamma_u, beta_u, gamma_v, beta_v, groups, eps):
        b, _, h, w = e_u.shape
        return e_u.new_empty(b, h, w), e_u.new_empty(4, b, groups)

    @torch.library.register_fake("a2u::embed_product_backward")
    def _embed_backward_fake(grad, e_u, e_v, gamma_u, beta_u, gamma_v, beta_v, stats, groups, need_e,
                             need_affine):
        maps = [torch.empty_like(t, memory_format=torch.contiguous_format) if need_e else e_u.new_empty(0)
                for t in (e_u, e_v)]
        affine = [torch.empty_like(t, memory_format=torch.contiguous_format) if need_affine else e_u.new_empty(0)
                  for t in (gamma_u, beta_u, gamma_v, beta_v)]
        return (*maps, *affine)

    def _embed_setup(ctx, inputs, output):
        *tensors, groups, _eps = inputs
        ctx.save_for_backward(*tensors, output[1])
        ctx.groups = groups
        ctx.mark_non_differentiable(output[1])

    def _embed_backward(ctx, grad, _grad_stats):
        *tensors, stats = ctx.saved_tensors
        need = ctx.needs_input_grad
        need_e, need_affine = need[0] or need[1], any(need[2:6])
        grads = lib_ops.embed_product_backward(grad, *tensors, stats, ctx.groups, need_e, need_affine)
        return (*(g if n else None for g, n in zip(grads, need[:6])), None, None)

    torch.library.register_autograd("a2u::embed_product", _embed_backward, setup_context=_embed_setup)
    register_pair_autograd("a2u::correlate", lib_ops.correlate_backward, "a2u::correlation")
    register_pair_autograd("a2u::reassemble_up", lib_ops.reassemble_up_backward, "a2u::reassembly_up")
    register_pair_autograd("a2u::reassemble_down", lib_ops.reassemble_down_backward, "a2u::reassembly_down")
    _state["registered"] = True


def reassemble_up(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                  scale_factor: int) -> torch.Tensor:
    """The fused op (inputs already checked and of one dtype)."""
    return torch.ops.a2u.reassemble_up(x, kernels, kernel_size, group_size, scale_factor)


def reassemble_down(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> torch.Tensor:
    return torch.ops.a2u.reassemble_down(x, kernels, kernel_size, group_size)


def correlate(x: torch.Tensor, filters: torch.Tensor, kernel_size: int, sets: int, stride: int) -> torch.Tensor:
    """The generator's fused depthwise correlation: x N×C×H×W, filters N×q×k×k (shared) or N×(q·C)×k×k
    (channel-wise, set-major), q = `sets` -> q×N×C×h×w (sets-major: each set's N×C×h×w view is contiguous).
    Semantics of `depthwise._correlations_eager`; x and filters float32/float64 of one dtype."""
    return torch.ops.a2u.correlate(x, filters, kernel_size, sets, stride)


def embed_product(e_u: torch.Tensor, e_v: torch.Tensor, norm_u: torch.nn.GroupNorm,
                  norm_v: torch.nn.GroupNorm) -> torch.Tensor:
    """The generator's steps 3–4 fused: Σ_c LeakyReLU₀.₀₁(norm_u(e_u)) · LeakyReLU₀.₀₁(norm_v(e_v)) / √C for e_u,
    e_v B×C×h×w -> B×h×w, without materialising the normalised maps (`models/ops/csrc/a2u_embedding.cpp`).
    Semantics of the eager lines of `A2UKernelGenerator._embed`; inputs as `use_fused_embedding` accepts."""
    return torch.ops.a2u.embed_product(e_u, e_v, norm_u.weight, norm_u.bias, norm_v.weight, norm_v.bias,
                                       norm_u.num_groups, norm_u.eps)[0]
