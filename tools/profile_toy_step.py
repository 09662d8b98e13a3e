"""Profile one A2U training step of the toy network against bilinear, for any checkout of this repository.

    python tools/profile_toy_step.py [CHECKOUT]      # CHECKOUT: a folder with models/ (default: this one)

Prints the median of 7 unprofiled steps (after 3 warm-up steps) for bilinear and a2u (batch 20, 32², SGD,
1 thread), their ratio, and the 12 most expensive ATen ops of an A2U step by self CPU time under
`torch.profiler` (mean of 3 steps). Run it on two checkouts one after the other (e.g. `git worktree add
/tmp/before <commit>`) to compare code versions on the same machine; the bench stage's interleaved medians are
the numbers to quote for one version.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

BATCH, SIZE, SEED = 20, 32, 0


def make_step(operator: str):
    """A closure doing one SGD step of the toy network with `operator` on a fixed random batch."""
    from models.toy import ToyReconstructionNet

    torch.manual_seed(SEED)
    net = ToyReconstructionNet(operator).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(BATCH, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(SEED))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        net(images, mode="loss")["loss"].backward()
        optimizer.step()
    return step


def median_step_s(step, warmup: int = 3, repeats: int = 7) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


def main() -> None:
    checkout = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]).resolve()
    sys.path.insert(0, str(checkout))
    torch.set_num_threads(1)
    bilinear = median_step_s(make_step("bilinear"))
    step = make_step("a2u")
    a2u = median_step_s(step)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    events = prof.key_averages()
    total_ms = sum(e.self_cpu_time_total for e in events) / 3 / 1e3
    print(f"{checkout}: bilinear step {bilinear * 1e3:.1f} ms, a2u step {a2u * 1e3:.1f} ms, "
          f"a2u/bilinear {a2u / bilinear:.2f}x; profiled a2u self-CPU total {total_ms:.1f} ms per step")
    print("| op | self ms per step | calls per step |\n|---|---|---|")
    for e in sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: -e.self_cpu_time_total)[:12]:
        print(f"| {e.key} | {e.self_cpu_time_total / 3 / 1e3:.2f} | {e.count // 3} |")


if __name__ == "__main__":
    main()
