"""Helpers shared by the up and down reassembly kernels: execution mode, argument checks, blocking, clipping."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

#: `torch.profiler.record_function` ranges around the eager A2U kernels (forward and backward), read by the bench's
#: floor profile (`pipeline.bench.floor`). Never entered while tracing/exporting (the plain forms run then).
PROFILE_LABELS = {
    "a2u::correlation": "the generator's u/v depthwise correlations (forward and backward)",
    "a2u::reassembly_up": "the upsampling reassembly, A2U's and CARAFE's (forward and backward)",
    "a2u::reassembly_down": "A2D's downsampling reassembly (forward and backward)",
}

#: Bytes of output (or of gradient, in backward) per block and intra-op thread: ~L2-sized. Measured on a 2-core
#: AMD EPYC (1 MiB L2 per core), 1 thread: 1–2 MiB best; smaller blocks lose to per-call Python overhead.
BLOCK_BYTES = 1 << 20
#: On CPU, upsampling inputs of at most this many pixels per image use the channels-last kernels of `small.py`;
#: larger ones the NCHW row kernels of `up.py` (measured on the 2-core Xeon, 1 thread: forward+backward
#: 0.6–0.8× the time at 4×4 … 16×16, even or slower from 32×32).
SMALL_MAP_PIXELS = 16 * 16
#: Block bytes on accelerators (CUDA): large, since each op is a kernel launch and memory bandwidth is ample.
DEVICE_BLOCK_BYTES = 64 << 20


def is_tracing() -> bool:
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


def is_exporting() -> bool:
    """True under ONNX export or torch.export (not plain jit tracing, e.g. FLOP counting, nor torch.compile,
    which handle the eager ops)."""
    if torch.onnx.is_in_onnx_export():
        return True
    exporting = getattr(getattr(torch, "compiler", None), "is_exporting", None)
    return bool(exporting is not None and exporting())


def check_guide(op: str, x: torch.Tensor, guide: torch.Tensor, scale: int) -> None:
    """Guided upsamplers (FADE, SAPA): x N×C×h×w and guide N×C_g×(scale·h)×(scale·w), else ValueError naming `op`."""
    if x.dim() != 4 or guide.dim() != 4 or x.shape[0] != guide.shape[0]:
        raise ValueError(f"{op}: x and guide must be 4-D with the same batch, got {tuple(x.shape)}, "
                         f"{tuple(guide.shape)}")
    if guide.shape[-2] != scale * x.shape[-2] or guide.shape[-1] != scale * x.shape[-1]:
        raise ValueError(f"{op}: guide must be {scale}× the size of x, got {tuple(guide.shape[-2:])} for "
                         f"{tuple(x.shape[-2:])}")


def check_inputs(op: str, x: torch.Tensor, kernels: torch.Tensor, kernel_size: int, group_size: int,
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


def common_dtype(x: torch.Tensor, kernels: torch.Tensor) -> torch.dtype:
    """The autocast dtype under autocast (as a convolution would use), else the promoted dtype."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type) and x.dtype != torch.float64:
        return torch.get_autocast_dtype(device_type)
    return torch.promote_types(x.dtype, kernels.dtype)


def shifted_range(shift: int, size: int, span: slice | None = None) -> tuple[slice, slice] | None:
    """Clip `out[i] += f(inp[i + shift])` to 0 ≤ i + shift < size, for i in `span` (default: all of [0, size)).

    Returns the (target, source) slices, or None when nothing is left.
    """
    lo, hi = (0, size) if span is None else (span.start, span.stop)
    start, stop = max(lo, -shift), min(hi, size - shift)
    if start >= stop:
        return None
    return slice(start, stop), slice(start + shift, stop + shift)


def local(sl: slice, origin: int) -> slice:
    """`sl` relative to a block starting at `origin`."""
    return slice(sl.start - origin, sl.stop - origin)


def unshifted_first(offsets: list[tuple], shift_positions: tuple[int, ...]) -> list[tuple]:
    """Offsets with zero shifts first (stable): they cover every output, so they initialise the buffers."""
    return sorted(offsets, key=lambda o: any(o[i] != 0 for i in shift_positions))


def blocks(n: int, rows: int, row_bytes: int, max_fraction: float = 1.0, device_type: str = "cpu"
           ) -> list[tuple[slice, slice]]:
    """(batch slice, row slice) blocks: whole images when they fit, else row bands.

    On CPU a block holds about BLOCK_BYTES per intra-op thread (each op splits its block between the threads),
    which also keeps the number of parallel regions, each a thread barrier, small. On GPUs blocks are large
    (DEVICE_BLOCK_BYTES: few kernel launches). Either way at most `max_fraction` of the whole (bounds per-block
    temps relative to the output).
    """
    image_bytes = max(1, rows * row_bytes)
    per_block = BLOCK_BYTES * max(1, torch.get_num_threads()) if device_type == "cpu" else DEVICE_BLOCK_BYTES
    budget = min(per_block, max(row_bytes, int(n * image_bytes * max_fraction)))
    if image_bytes <= budget:
        step = budget // image_bytes
        return [(slice(i, min(n, i + step)), slice(0, rows)) for i in range(0, n, step)]
    band = max(1, budget // max(1, row_bytes))
    return [(slice(i, i + 1), slice(r, min(rows, r + band))) for i in range(n) for r in range(0, rows, band)]


def use_small_path(x: torch.Tensor, pixels: int) -> bool:
    """Whether an upsampling input of `pixels` per image goes to the channels-last small-map kernels."""
    return x.device.type == "cpu" and pixels <= SMALL_MAP_PIXELS


class Workspace:
    """Per-call scratch buffers reused across blocks: `get(name, shape)` returns an uninitialised tensor of that
    shape backed by one allocation per name (grown when a block needs more).

    A blocked kernel that allocates its temps per block pays the allocator (and, for fresh pages, page faults)
    on every block; reusing one buffer per role keeps it mapped and cache-warm (measured on the 2-core Xeon,
    1 thread: A2D forward/backward 0–7% faster at 1×64×512² and 1×64×1024²).
    """

    def __init__(self, like: torch.Tensor) -> None:
        self.like = like
        self.buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], zero: bool = False) -> torch.Tensor:
        numel = 1
        for size in shape:
            numel *= size
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < numel:
            buf = self.buffers[name] = self.like.new_empty(numel)
        out = buf[:numel].view(shape)
        return out.zero_() if zero else out


def restore_format(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`out` in channels_last when `like` (an input) was channels_last and not contiguous."""
    if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


class BackendSwitch:
    """On/off switch of an optional kernel backend (the fused C++ ops, the Triton kernels).

    On unless the environment variable `env_var` is "0", "off", "false" or "no"; `force(True | False)` overrides
    the environment (None returns to it) and `off()` turns the backend off inside a block (tests, comparisons).
    """

    def __init__(self, env_var: str) -> None:
        self.env_var = env_var
        self.forced: bool | None = None

    def enabled(self) -> bool:
        if self.forced is not None:
            return self.forced
        return os.environ.get(self.env_var, "1").strip().lower() not in ("0", "off", "false", "no")

    def force(self, enabled: bool | None) -> None:
        self.forced = enabled

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        previous, self.forced = self.forced, False
        try:
            yield
        finally:
            self.forced = previous


def register_pair_autograd(op, backward_op, label: str) -> None:
    """Autograd of a custom op op(a, b, *config) with two differentiable tensor inputs (a reassembly: x and
    kernels; a correlation: x and filters): the backward calls backward_op(grad, a, b, *config, need_a, need_b),
    which returns (grad_a, grad_b), inside a `torch.profiler.record_function(label)` range.

    `op`: a `torch.library` op name ("a2u::reassemble_up") or op object (a `triton_op`)."""
    def setup(ctx, inputs, output) -> None:
        a, b, *config = inputs
        ctx.save_for_backward(a, b)
        ctx.config = tuple(config)

    def run_backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with torch.profiler.record_function(label):
            grad_a, grad_b = backward_op(grad, a, b, *ctx.config, need_a, need_b)
        return (grad_a if need_a else None), (grad_b if need_b else None), *(None,) * len(ctx.config)

    torch.library.register_autograd(op, run_backward, setup_context=setup)
