"""`bench` section of params.yaml: what the benchmark measures and within which wall-time budgets."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import check


@dataclass(frozen=True)
class BenchParams:
    """Settings of the bench stage (defaults: the full run; profiles shrink it).

    operators: operator-pair names timed per shape (null: every registered pair).
    network_variants: matting-network upsamplers timed as whole networks.
    threads: torch intra-op threads while timing (1 steadies CPU ratios on a shared machine; null: default).
    repeats: interleaved repeats per case (the median is reported).
    batch_sizes, op_matting_sizes, op_include_toy: the operator shapes (×2 stages of matting inputs of these
        sizes, and the toy network's).
    op_max_elements, op_max_bytes: largest operator case run (N·C·R², estimated peak bytes); bigger ones are
        listed as skipped with the reason.
    network_sizes: input sides of the whole-network timing.
    op_time_budget_s, reassembly_time_budget_s, network_time_budget_s: wall-time bounds (null: unlimited).
    metrics_size, metrics_repeats: the matting-metrics speed case.
    export, export_sizes: write ONNX exports to export/ and check onnxruntime against PyTorch at these (H, W).
    """

    operators: tuple[str, ...] | None = None
    network_variants: tuple[str, ...] = ("bilinear", "a2u", "a2u-unshared")
    threads: int | None = None
    repeats: int = 5
    batch_sizes: tuple[int, ...] = (1,)
    op_matting_sizes: tuple[int, ...] = (512, 1024)
    op_include_toy: bool = True
    op_max_elements: int = 2 ** 22
    op_max_bytes: int = 4 * 2 ** 30
    network_sizes: tuple[int, ...] = (512,)
    op_time_budget_s: float | None = 120.0
    reassembly_time_budget_s: float | None = 40.0
    network_time_budget_s: float | None = 120.0
    metrics_size: int = 800
    metrics_repeats: int = 3
    export: bool = True
    export_sizes: tuple[tuple[int, int], ...] = ((64, 96), (256, 256))

    def __post_init__(self) -> None:
        check(self.threads is None or self.threads >= 1, "bench.threads", "must be null or >= 1", self.threads)
        for key in ("repeats", "op_max_elements", "op_max_bytes", "metrics_size", "metrics_repeats"):
            check(getattr(self, key) >= 1, f"bench.{key}", "must be >= 1", getattr(self, key))
        for key in ("batch_sizes", "op_matting_sizes", "network_sizes"):
            check(all(v >= 1 for v in getattr(self, key)), f"bench.{key}", "must hold sizes >= 1",
                  getattr(self, key))
        for key in ("op_time_budget_s", "reassembly_time_budget_s", "network_time_budget_s"):
            value = getattr(self, key)
            check(value is None or value > 0, f"bench.{key}", "must be null or > 0", value)
        check(all(h % 16 == 0 and w % 16 == 0 and h > 0 and w > 0 for h, w in self.export_sizes),
              "bench.export_sizes", "must hold [H, W] pairs of positive multiples of 16", self.export_sizes)
