"""Peak memory of one block of work (one image's inference), measured the way the device allows.

- CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, minus what was allocated at entry
  (tensors held by the caching allocator; the model's weights are not counted). Method `cuda_max_allocated`.
- CPU on Linux: the process's resident-set high-water mark (VmHWM) is reset by writing 5 to
  /proc/self/clear_refs; peak = VmHWM at exit − VmRSS at entry. It counts everything the process touched
  (torch's allocator, numpy, OpenCV), which tracemalloc does not see. Method `rss_hwm_delta`.
- Elsewhere: the growth of `resource.getrusage().ru_maxrss`, a lower bound (0 once an earlier image peaked
  higher). Method `ru_maxrss_delta`.
"""
from __future__ import annotations

import resource
import sys
from pathlib import Path
from types import TracebackType

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_MIB = 1024.0 * 1024.0


def _status_kib(field: str) -> int | None:
    """One `Vm*` field of /proc/self/status in KiB, or None where the file does not exist."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _maxrss_mib() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / _MIB if sys.platform == "darwin" else maxrss / 1024.0  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Context manager: `peak_mb` = peak memory of the block above the level at entry, in MiB.

    Args:
        device (str | torch.device): where the block's tensors live; CUDA devices use the allocator's counters.
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.peak_mb = 0.0
        self.method = ""
        self._base = 0.0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method, self._base = "cuda_max_allocated", torch.cuda.memory_allocated(self.device) / _MIB
        elif _status_kib("VmRSS") is not None and _reset_hwm():
            self.method, self._base = "rss_hwm_delta", _status_kib("VmRSS") / 1024.0
        else:
            self.method, self._base = "ru_maxrss_delta", _maxrss_mib()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.method == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / _MIB
        elif self.method == "rss_hwm_delta":
            peak = (_status_kib("VmHWM") or 0) / 1024.0
        else:
            peak = _maxrss_mib()
        self.peak_mb = max(0.0, peak - self._base)
