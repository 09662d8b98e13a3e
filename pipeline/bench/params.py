"""`bench` section of params.yaml: what the benchmark measures and within which wall-time budgets."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.params import check


@dataclass(frozen=True)
class BenchParams:
    """Settings of the bench stage (defaults: the full run; profiles shrink it).

    operators: operator-pair names timed per shape (null: the nine pairs of `PAIR_NAMES` and the six successors
        of `SUCCESSOR_PAIR_NAMES`; ablation pairs such as a2u-self are timed when named).
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
    ratio_threads: thread counts at which the A2U/bilinear ratio targets (training steps, network forward)
        are measured, each in its own interleaved round.
    step_repeats: interleaved repeats per training-step case (the median is reported; ≥ 5 for the targets).
    step_variants: operator pairs timed in the matting training-step cases against bilinear (must include
        bilinear and a2u, whose ratio the targets state); the toy cases time bilinear and a2u.
    toy_step_batches: batches of the toy training-step cases (N×1×32×32).
    matting_step_cases: [batch, crop] of the matting training-step cases (crop a multiple of 16; batch ≥ 2:
        with batch 1 the BatchNorm of the ASPP image-pooling branch sees one value per channel and cannot train).
    step_time_budget_s: wall-time bound of all training-step cases (null: unlimited); a case whose projected
        cost does not fit is listed as skipped with the reason.
    network_repeats: interleaved repeats per network size and thread count (≥ 3 for the forward targets).
    floor: profile one A2U training step per case of `floor_cases` (torch.profiler) for the floor shares.
    floor_cases: [kind, batch, size] steps to profile (kind toy_train or matting_train).
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
    ratio_threads: tuple[int, ...] = (1, 2)
    step_repeats: int = 5
    step_variants: tuple[str, ...] = ("bilinear", "a2u", "fade", "sapa", "dysample")
    toy_step_batches: tuple[int, ...] = (20, 100)
    matting_step_cases: tuple[tuple[int, int], ...] = ((4, 64), (2, 512))
    step_time_budget_s: float | None = None
    network_repeats: int = 3
    floor: bool = True
    floor_cases: tuple[tuple[str, int, int], ...] = (("toy_train", 20, 32), ("matting_train", 4, 64))

    def __post_init__(self) -> None:
        check(self.threads is None or self.threads >= 1, "bench.threads", "must be null or >= 1", self.threads)
        for key in ("repeats", "op_max_elements", "op_max_bytes", "metrics_size", "metrics_repeats", "step_repeats",
                    "network_repeats"):
            check(getattr(self, key) >= 1, f"bench.{key}", "must be >= 1", getattr(self, key))
        check("bilinear" in self.step_variants and "a2u" in self.step_variants
              and len(set(self.step_variants)) == len(self.step_variants), "bench.step_variants",
              "must name bilinear and a2u (the targets' ratio), each once", self.step_variants)
        for key in ("batch_sizes", "op_matting_sizes", "network_sizes", "ratio_threads", "toy_step_batches"):
            check(all(v >= 1 for v in getattr(self, key)), f"bench.{key}", "must hold sizes >= 1",
                  getattr(self, key))
        check(all(b >= 2 and c >= 16 and c % 16 == 0 for b, c in self.matting_step_cases), "bench.matting_step_cases",
              "must hold [batch >= 2 (BatchNorm of the ASPP image pooling), crop: a multiple of 16] pairs",
              self.matting_step_cases)
        check(all(k in ("toy_train", "matting_train") and b >= (2 if k == "matting_train" else 1) and (s % 16 == 0 if k == "matting_train" else
                                                                      s % 8 == 0) and s > 0
                  for k, b, s in self.floor_cases), "bench.floor_cases",
              "must hold [toy_train or matting_train, batch (matting: >= 2), size (toy: a multiple of 8, matting: of 16)]",
              self.floor_cases)
        for key in ("op_time_budget_s", "reassembly_time_budget_s", "network_time_budget_s", "step_time_budget_s"):
            value = getattr(self, key)
            check(value is None or value > 0, f"bench.{key}", "must be null or > 0", value)
        check(all(h % 16 == 0 and w % 16 == 0 and h > 0 and w > 0 for h, w in self.export_sizes),
              "bench.export_sizes", "must hold [H, W] pairs of positive multiples of 16", self.export_sizes)
