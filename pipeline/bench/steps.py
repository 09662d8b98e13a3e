"""Whole training steps, A2U (and its successors) against bilinear, timed interleaved at several thread counts.

A *training step* is what one iteration of the `toy` or `train` stage costs without data loading: zero the
gradients, forward, the stage's loss, backward, optimiser step.

- toy (`toy_step`): `ToyReconstructionNet(operator)` on N×1×32×32 images, L1 loss (the model's 'loss' mode),
  SGD lr 0.01 momentum 0.9 (configs/toy/_base_/toy_schedule.py);
- matting (`matting_step`): `A2UMattor(A2UMattingNet(upsampler))` on N×4×crop×crop inputs with the spec-5.2
  loss (masked Charbonnier on alpha and composition) against random targets, Adam (the paper's optimiser).

Network forwards are timed by `pipeline.bench.networks` (same interleaving and thread counts).

All variants of one case are built from the same seed and measured in one process by
`pipeline.bench.timing.interleaved_medians` (round-robin, start rotated), once per thread count in
`threads` (`torch.set_num_threads`, restored afterwards); the ratio is each variant's median over the
baseline's median at the same thread count. Ratios are what the targets are stated in: on a shared machine
they are far steadier than absolute times.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from pipeline.bench.budget import TimeBudget
from pipeline.bench.timing import interleaved_medians, thread_count, timer_for

logger = logging.getLogger(__name__)
Step = Callable[[], Any]
KINDS = ("toy_train", "matting_train")


@dataclass(frozen=True)
class StepCase:
    """One measured case: `kind` (see KINDS), batch N, input side `size` (toy image, matting crop or input)."""

    kind: str
    batch: int
    size: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"step case kind must be one of {KINDS}, got {self.kind!r}")
        if self.batch < 1 or self.size < 1:
            raise ValueError(f"step case batch and size must be >= 1, got {self.batch}, {self.size}")

    @property
    def label(self) -> str:
        what = {"toy_train": "toy train step", "matting_train": "matting train step"}[self.kind]
        return f"{what}, batch {self.batch}, {self.size}²"

    @property
    def units(self) -> float:
        """Work estimate for the time budget (seconds scale with it within a kind): batch × pixels."""
        return float(self.batch * self.size * self.size)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "batch": self.batch, "size": self.size, "label": self.label}


def toy_step(operator: str, batch: int, size: int = 32, seed: int = 0,
             device: torch.device | str = "cpu") -> Step:
    """One SGD step of the toy network with `operator` on a fixed random batch (N×1×size×size)."""
    from models.toy import ToyReconstructionNet

    torch.manual_seed(seed)
    net = ToyReconstructionNet(operator).to(device).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(batch, 1, size, size, generator=torch.Generator().manual_seed(seed)).to(device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        net(images, mode="loss")["loss"].backward()
        optimizer.step()
    return step


def _matting_targets(batch: int, size: int, seed: int, device: torch.device | str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    alpha = torch.rand(batch, 1, size, size, generator=gen)
    unknown = (torch.rand(batch, 1, size, size, generator=gen) < 0.5).float()
    fg, bg = torch.rand(batch, 3, size, size, generator=gen), torch.rand(batch, 3, size, size, generator=gen)
    image = alpha * fg + (1 - alpha) * bg
    return {k: v.to(device) for k, v in dict(alpha=alpha, unknown=unknown, fg=fg, bg=bg, image=image).items()}


def matting_step(variant: str, batch: int, crop: int, seed: int = 0, device: torch.device | str = "cpu") -> Step:
    """One Adam step of the matting model (network `variant` + the spec-5.2 loss) on a fixed random batch."""
    from models.matting.mattor import A2UMattor

    torch.manual_seed(seed)
    model = A2UMattor(network=dict(type="A2UMattingNet", upsampler=variant)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    inputs = torch.randn(batch, 4, crop, crop, generator=torch.Generator().manual_seed(seed)).to(device)
    targets = _matting_targets(batch, crop, seed, device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        losses = model(inputs, targets, mode="loss")
        sum(losses.values()).backward()
        optimizer.step()
    return step


def build_step(case: StepCase, variant: str, seed: int = 0, device: torch.device | str = "cpu") -> Step:
    """The zero-argument callable measured for `variant` in `case`."""
    if case.kind == "toy_train":
        return toy_step(variant, case.batch, case.size, seed, device)
    return matting_step(variant, case.batch, case.size, seed, device)


def bench_case(case: StepCase, variants: Sequence[str], threads: Iterable[int], repeats: int, seed: int = 0,
               device: torch.device | str = "cpu", baseline: str = "bilinear", warmup: int = 1,
               builder: Callable[[StepCase, str, int, torch.device | str], Step] | None = None) -> dict[str, Any]:
    """Time every variant of `case` at every thread count (interleaved). Returns a JSON-ready dict:

    {case..., "repeats", "threads": {"1": {variant: {median_s, samples_s, ratio_vs_<baseline>}}}}.
    """
    if baseline not in variants:
        raise ValueError(f"variants {list(variants)} must include the baseline {baseline!r}")
    builder = builder or build_step
    steps = {name: builder(case, name, seed, device) for name in variants}
    out: dict[str, Any] = {**case.as_dict(), "repeats": repeats, "warmup": warmup, "baseline": baseline,
                           "threads": {}}
    for n in threads:
        with thread_count(n):
            timings = interleaved_medians(steps, repeats, timer=timer_for(device), warmup=warmup)
        base = timings[baseline].median_s
        out["threads"][str(n)] = {name: {**t.as_dict(), f"ratio_vs_{baseline}": t.median_s / base}
                                  for name, t in timings.items()}
    return out


def bench_cases(cases: Sequence[StepCase], variants: Sequence[str] | Mapping[str, Sequence[str]],
                threads: Sequence[int], repeats: int, seed: int = 0, device: torch.device | str = "cpu",
                time_budget_s: float | None = None,
                builder: Callable[[StepCase, str, int, torch.device | str], Step] | None = None
                ) -> dict[str, Any]:
    """Every case in order within `time_budget_s` (`bench.step_time_budget_s`); refused ones are listed in
    "skipped" with the reason. A case's cost is projected from the last measured case of the same kind
    (seconds per `StepCase.units`); the first case of a kind always runs while time is left. `variants` is one
    list for every case or a list per kind (the baseline first)."""
    per_kind = variants if isinstance(variants, Mapping) else {kind: variants for kind in KINDS}
    budget = TimeBudget(time_budget_s, "bench.step_time_budget_s")
    rates: dict[str, TimeBudget] = {}
    results, skipped = [], []
    for case in cases:
        kind_budget = rates.setdefault(case.kind, TimeBudget(time_budget_s, "bench.step_time_budget_s"))
        kind_budget.start = budget.start          # one wall-time budget, one projection rate per kind
        reason = kind_budget.refusal(case.units)
        if reason:
            skipped.append({**case.as_dict(), "reason": reason})
            logger.info("skipped %s: %s", case.label, reason)
            continue
        start = time.perf_counter()
        variants = list(per_kind[case.kind])
        results.append(bench_case(case, variants, threads, repeats, seed, device, baseline=variants[0],
                                  builder=builder))
        elapsed = time.perf_counter() - start
        kind_budget.record(case.units, elapsed)
        shown = "a2u" if "a2u" in variants else variants[-1]
        ratios = {t: r[shown][f"ratio_vs_{variants[0]}"] for t, r in results[-1]["threads"].items()}
        others = {v: round(results[-1]["threads"][str(threads[0])][v][f"ratio_vs_{variants[0]}"], 2)
                  for v in variants[1:] if v != shown}
        logger.info("%s: %.1f s; %s / %s by threads: %s%s", case.label, elapsed, shown, variants[0],
                    {t: round(v, 3) for t, v in ratios.items()},
                    f"; at {threads[0]} thread(s): {others}" if others else "")
    return {"cases": results, "skipped": skipped, "variants": {k: list(v) for k, v in per_kind.items()},
            "threads": [str(t) for t in threads], "repeats": repeats}


def _find(steps: dict[str, Any], kind: str, batch: int, size: int) -> dict[str, Any] | None:
    for item in steps.get("cases", []):
        if (item["kind"], item["batch"], item["size"]) == (kind, batch, size):
            return item
    return None


def case_ratio(steps: dict[str, Any], kind: str, batch: int, size: int, variant: str = "a2u",
               threads: int | None = None) -> float | None:
    """The ratio of `variant` in case (kind, batch, size) at `threads`, or the worst over thread counts;
    None when the case (or that thread count) was not measured."""
    item = _find(steps, kind, batch, size)
    if item is None:
        return None
    per = item["threads"]
    keys = [str(threads)] if threads is not None else list(per)
    values = [per[k][variant][f"ratio_vs_{item['baseline']}"] for k in keys if k in per and variant in per[k]]
    return max(values) if values else None


def case_median(steps: dict[str, Any], kind: str, batch: int, size: int, variant: str,
                threads: int) -> float | None:
    """Median seconds of `variant` in case (kind, batch, size) at `threads`, or None when not measured."""
    item = _find(steps, kind, batch, size)
    entry = (item or {}).get("threads", {}).get(str(threads), {}).get(variant)
    return None if entry is None else float(entry["median_s"])
