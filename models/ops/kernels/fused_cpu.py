"""Fused CPU reassembly ops (`a2u::reassemble_up`, `a2u::reassemble_down`): loader, fake and autograd registration.

The C++ library (`models/ops/csrc/a2u_reassembly.cpp`) is compiled at install time by `python -m
models.ops.build_ext` (the Makefile's install step) and only *loaded* here. `up.reassemble_up` and
`down.a2d_downsample` call these ops for CPU tensors in eager mode (`use_fused`); while tracing or exporting the
plain forms run (standard ops only in exported graphs), and on other devices the existing paths run.

Each op is one `torch.library` op with a fake (meta) implementation and an autograd formula whose backward is
the fused backward op (grad_x and grad_K in one pass, no atomics), so autograd, `torch.compile` (when called
directly) and `torch.library.opcheck` see one op.

Fallback: when the library is missing, stale (other torch version or source) or fails to load, the pure-PyTorch
kernels run and ONE warning says why and how to build it. `A2U_FUSED_CPU=0` in the environment, or
`set_fused_enabled(False)` / the `fallback()` context manager, forces the pure-PyTorch path (one warning too).
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import torch

from models.ops.kernels.common import is_tracing

__all__ = ["available", "use_fused", "set_fused_enabled", "fallback", "unavailable_reason", "backend",
           "ENV_VAR", "BUILD_HINT"]

#: Environment variable: "0" (or "off", "false") forces the pure-PyTorch path.
ENV_VAR = "A2U_FUSED_CPU"
BUILD_HINT = "build it with `make venv` or `.venv/bin/python -m models.ops.build_ext`"
#: dtypes the C++ kernels take (accumulation in float32, float64 for float64)
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)

_state: dict = {"loaded": None, "reason": None, "enabled": None, "warned": set()}


def _load() -> bool:
    if _state["loaded"] is not None:
        return _state["loaded"]
    _state["loaded"] = False
    try:
        from models.ops import build_ext

        reason = build_ext.stale_reason()
        if reason is None:
            if not hasattr(torch.ops.a2u, "reassemble_up_backward"):
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


def _env_enabled() -> bool:
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "off", "false", "no")


def set_fused_enabled(enabled: bool | None) -> None:
    """Force the fused CPU ops on (when built) or off; None returns to the environment's choice."""
    _state["enabled"] = enabled


@contextlib.contextmanager
def fallback() -> Iterator[None]:
    """Run the pure-PyTorch reassembly inside the block (for tests and comparisons)."""
    previous = _state["enabled"]
    _state["enabled"] = False
    try:
        yield
    finally:
        _state["enabled"] = previous


def reset_warnings() -> None:
    """Let the fallback warnings fire again (tests)."""
    _state["warned"].clear()


def _warn_once(key: str, message: str) -> None:
    if key not in _state["warned"]:
        _state["warned"].add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def use_fused(x: torch.Tensor) -> bool:
    """Whether this eager call on x takes the fused C++ op (CPU, not tracing/exporting, supported dtype)."""
    if x.device.type != "cpu" or x.dtype not in DTYPES or is_tracing():
        return False
    enabled = _state["enabled"] if _state["enabled"] is not None else _env_enabled()
    if not enabled:
        _warn_once("forced", f"a2u: fused CPU reassembly disabled ({ENV_VAR}=0 or fused_cpu.set_fused_enabled/"
                             f"fallback()); the pure-PyTorch reassembly runs (slower)")
        return False
    if not _load():
        _warn_once("missing", f"a2u: fused CPU reassembly ops unavailable: {_state['reason']}; the pure-PyTorch "
                              f"reassembly runs (slower); {BUILD_HINT}")
        return False
    return True


def backend(device_type: str = "cpu") -> str:
    """Which reassembly backend eager calls on `device_type` use: 'fused-cpp', 'eager' (pure PyTorch)."""
    if device_type != "cpu":
        return "eager"
    enabled = _state["enabled"] if _state["enabled"] is not None else _env_enabled()
    return "fused-cpp" if enabled and _load() else "eager"


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

    def _setup(ctx, inputs, output):
        x, kernels, *config = inputs
        ctx.save_for_backward(x, kernels)
        ctx.config = tuple(config)

    def _up_backward(ctx, grad):
        x, kernels = ctx.saved_tensors
        need_x, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with torch.profiler.record_function("a2u::reassembly_up"):
            gx, gk = lib_ops.reassemble_up_backward(grad, x, kernels, *ctx.config, need_x, need_k)
        return (gx if need_x else None), (gk if need_k else None), None, None, None

    def _down_backward(ctx, grad):
        x, kernels = ctx.saved_tensors
        need_x, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with torch.profiler.record_function("a2u::reassembly_down"):
            gx, gk = lib_ops.reassemble_down_backward(grad, x, kernels, *ctx.config, need_x, need_k)
        return (gx if need_x else None), (gk if need_k else None), None, None

    torch.library.register_autograd("a2u::reassemble_up", _up_backward, setup_context=_setup)
    torch.library.register_autograd("a2u::reassemble_down", _down_backward, setup_context=_setup)
    _state["registered"] = True


def reassemble_up(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                  scale_factor: int) -> torch.Tensor:
    """The fused op (inputs already checked and of one dtype)."""
    return torch.ops.a2u.reassemble_up(x, kernels, kernel_size, group_size, scale_factor)


def reassemble_down(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> torch.Tensor:
    return torch.ops.a2u.reassemble_down(x, kernels, kernel_size, group_size)
