"""CPU (gloo) support for MMEngine's `--launcher pytorch` training.

MMEngine 0.10.7 assumes a GPU in two places when launched by torchrun:
* its `init_dist` calls `torch.cuda.set_device(LOCAL_RANK)` (fails on a CPU-only torch):
  `init_cpu_process_group` starts the gloo process group first, so the Runner finds it initialised and skips that;
* its Runner passes `device_ids=[LOCAL_RANK]` to the DDP wrapper, which torch rejects for CPU modules:
  `DeviceAwareDistributedDataParallel` drops `device_ids` for a CPU module and is otherwise MMEngine's
  `MMDistributedDataParallel` (same `train_step` / `val_step`).
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as torch_dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


@MODEL_WRAPPERS.register_module()
class DeviceAwareDistributedDataParallel(MMDistributedDataParallel):
    """`MMDistributedDataParallel` that ignores `device_ids` when the module's parameters are on the CPU."""

    def __init__(self, module: nn.Module, device_ids: list[int] | None = None, **kwargs: Any) -> None:
        first = next(module.parameters(), None)
        if first is not None and first.device.type == "cpu":
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)


def init_cpu_process_group(launcher: str) -> bool:
    """Under `launcher='pytorch'` without CUDA, start the gloo process group from torchrun's environment.

    Returns True when this call initialised it (False: not needed, or already initialised).
    """
    if launcher != "pytorch" or torch.cuda.is_available() or torch_dist.is_initialized():
        return False
    missing = [key for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if key not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher pytorch needs torchrun's environment variables; missing {missing}")
    torch_dist.init_process_group(backend="gloo")
    return True
