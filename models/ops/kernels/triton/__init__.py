"""Triton (CUDA) reassembly kernels: availability, dispatch switch and lazy entry points.

`up.reassemble_up` and `down.a2d_downsample` call `reassemble_up` / `reassemble_down` below for CUDA tensors in
eager mode when triton imports (`use_triton`). Nothing here imports triton until a CUDA tensor asks for it, so
CPU-only installs never import it and see no warning. The ops (`a2u_triton::reassemble_up`, `..._down`, each with
a `register_autograd` backward running the fused gather-form backward kernels) live in `up.py` / `down.py`;
the kernels in `kernels.py`. Under `TRITON_INTERPRET=1` (set before triton is imported) the same ops run on CPU
tensors through Triton's interpreter, which is how the CPU tests check them.

`A2U_TRITON=0` in the environment, or the `disabled()` context manager, forces the pure-PyTorch path on CUDA
(for comparisons).
"""
from __future__ import annotations

import contextlib

import torch

from models.ops.kernels.common import BackendSwitch

__all__ = ["available", "unavailable_reason", "use_triton", "disabled", "backend", "reassemble_up",
           "reassemble_down", "ENV_VAR", "DTYPES"]

#: Environment variable: "0" (or "off", "false", "no") forces the pure-PyTorch path on CUDA.
ENV_VAR = "A2U_TRITON"
#: dtypes the kernels take (fp32 accumulation; fp64 accumulation for fp64)
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)

_state: dict = {"available": None, "reason": None}
_switch = BackendSwitch(ENV_VAR)


def available() -> bool:
    """Whether triton imports (checked once, on first use)."""
    if _state["available"] is None:
        try:
            import triton  # noqa: F401

            _state["available"] = True
        except Exception as error:   # not installed, or broken: the pure-PyTorch path runs
            _state["available"] = False
            _state["reason"] = f"triton does not import ({type(error).__name__}: {error})"
    return _state["available"]


def unavailable_reason() -> str | None:
    return None if available() else _state["reason"]


def disabled() -> contextlib.AbstractContextManager[None]:
    """Run the pure-PyTorch reassembly on CUDA inside the block (comparisons, timings)."""
    return _switch.off()


def use_triton(x: torch.Tensor) -> bool:
    """Whether this eager call on x takes the Triton op: a CUDA tensor of a supported dtype, enabled, triton
    importable (the device check comes first, so CPU calls never import triton)."""
    return x.device.type == "cuda" and x.dtype in DTYPES and _switch.enabled() and available()


def backend(device_type: str = "cuda") -> str:
    """'triton' when eager reassembly on `device_type` uses these kernels, else 'eager'."""
    return "triton" if device_type == "cuda" and _switch.enabled() and available() else "eager"


def reassemble_up(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
                  scale_factor: int) -> torch.Tensor:
    """`a2u_triton::reassemble_up` (inputs already checked and of one dtype)."""
    from models.ops.kernels.triton import up

    return up.reassemble_up(x, kernels, kernel_size, group_size, scale_factor)


def reassemble_down(x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int) -> torch.Tensor:
    """`a2u_triton::reassemble_down` (inputs already checked and of one dtype)."""
    from models.ops.kernels.triton import down

    return down.reassemble_down(x, kernels, kernel_size, group_size)
