"""Peak memory of one call, measured the same way for every operator so the numbers are comparable.

CPU method ("live tensor storages"): a `TorchDispatchMode` sees every ATen op the call runs (forward and
autograd backward alike). Each *new* storage an op returns is added to a running total; a `weakref.finalize`
on the storage subtracts it when the storage is freed. The peak of that total is the most tensor memory
the call held at once beyond what existed before it: activations, autograd's saved tensors, gradients and
the output. Tensors created before the call (the inputs, the weights) are not counted; library workspaces
that never become tensors (e.g. oneDNN scratch) and allocator caching are not counted either. It is exact
and deterministic for tensor memory, unlike RSS, which glibc's caching makes noisy on a shared machine.
The tracker slows the call (Python per op), so it is never combined with timing.

CUDA method: `torch.cuda.max_memory_allocated()` after `reset_peak_memory_stats()`, minus the memory allocated
before the call (the same "beyond what existed before" definition, but including workspaces).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

CPU_METHOD = "live tensor storages (TorchDispatchMode + weakref.finalize), beyond tensors existing before the call"
CUDA_METHOD = "torch.cuda.max_memory_allocated minus memory_allocated before the call"


@dataclass
class MemoryResult:
    """Peak bytes held during a call beyond what existed before it, and how they were measured."""

    peak_bytes: int
    method: str

    def as_dict(self) -> dict[str, Any]:
        return {"peak_bytes": int(self.peak_bytes), "peak_mib": self.peak_bytes / 2**20, "method": self.method}


class LiveStorageTracker(TorchDispatchMode):
    """Track the bytes of tensor storages created inside the `with` block that are still alive.

    Attributes:
        live_bytes: bytes currently held by storages created in the block.
        peak_bytes: the maximum of `live_bytes` seen so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live_bytes = 0
        self.peak_bytes = 0
        self._tracked: set[int] = set()

    def _release(self, key: int, nbytes: int) -> None:
        self.live_bytes -= nbytes
        self._tracked.discard(key)

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._tracked:
            return
        nbytes = storage.nbytes()
        self._tracked.add(key)
        self.live_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(storage, self._release, key, nbytes)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        out = func(*args, **(kwargs or {}))
        for leaf in _fresh_outputs(func, out):
            if isinstance(leaf, torch.Tensor) and leaf.device.type != "meta":
                self._track(leaf)
        return out


def _fresh_outputs(func: Any, out: Any) -> list[Any]:
    """Outputs of `func` that are not declared aliases of an input (views and in-place results are skipped).

    A view of a tensor that existed before the block must not be counted as new memory; the op schema says
    which returns alias an input (`alias_info`).
    """
    returns = func._schema.returns
    if not returns:                      # e.g. profiler::_record_function_exit
        return []
    per_return = [out] if len(returns) == 1 else list(out)
    fresh = []
    for ret, value in zip(returns, per_return):
        if ret.alias_info is None:
            fresh.extend(tree_flatten(value)[0])
    return fresh


def peak_memory_cpu(fn: Callable[[], Any]) -> MemoryResult:
    """Peak live tensor bytes created by `fn()` (the result is dropped before returning)."""
    with LiveStorageTracker() as tracker:
        result = fn()
        del result
    return MemoryResult(tracker.peak_bytes, CPU_METHOD)


def peak_memory_cuda(fn: Callable[[], Any], device: torch.device | str) -> MemoryResult:
    """Peak CUDA bytes allocated by `fn()` beyond the memory allocated before it."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del result
    return MemoryResult(int(peak), CUDA_METHOD)


def peak_memory(fn: Callable[[], Any], device: torch.device | str) -> MemoryResult:
    """Dispatch to the CUDA or the CPU method according to `device`."""
    if torch.device(device).type == "cuda":
        return peak_memory_cuda(fn, device)
    return peak_memory_cpu(fn)
