"""The benchmark harness on tiny shapes with stand-in operators: well-formed JSON, ratios, tables, plot."""
from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.bench.ops import DOWN_BASELINE, MODES, UP_BASELINE, bench_shape
from pipeline.bench.params import BenchParams
from pipeline.bench.run import run_benchmark
from pipeline.core.params import BaseParams
from pipeline.bench.shapes import OpShape, plan_shapes, stage_shapes


class KernelPair(nn.Module):
    """Stand-in pair with A2U's structure: down makes (low, kernels), up consumes the kernels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gen = nn.Conv2d(channels, 9, 3, padding=1)

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        kernels = self.gen(x).softmax(1)
        return F.avg_pool2d(x, 2), {"kernels": kernels, "note": "non-tensor state passes through"}

    def up(self, z: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        up = F.interpolate(z, scale_factor=2, mode="nearest")
        return up * state["kernels"].sum(1, keepdim=True)


class IndexPair(nn.Module):
    """Stand-in with integer state (max-unpool indices)."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def down(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.max_pool2d(x, 2, return_indices=True)

    def up(self, z: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return F.max_unpool2d(z, state, 2)


FACTORY = {"kernel": KernelPair, "index": IndexPair}


def pair_factory(name: str, channels: int) -> nn.Module:
    return FACTORY[name](channels)


def stand_in_step(case, variant, seed, device):
    """A training step of a tiny conv net, wider for 'a2u' (so the ratios are > 1), scaled by the case."""
    torch.manual_seed(seed)
    net = nn.Conv2d(1, 4 if variant == "bilinear" else 8, 3, padding=1)
    x = torch.randn(1, 1, 8, 8)

    def step():
        net.zero_grad()
        net(x).sum().backward()
    return step


class TinyNet(nn.Module):
    def __init__(self, variant: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8 if variant == "bilinear" else 16, 3, padding=1)
        self.head = nn.Conv2d(self.conv.out_channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x))


def test_stage_shapes_dedupe_and_plan_skips_with_reasons() -> None:
    shapes = stage_shapes([512, 1024], include_toy=True)
    keys = [(c, r) for c, r, _ in shapes]
    assert len(keys) == len(set(keys))
    assert (64, 512) in keys and (256, 128) in keys and (32, 32) in keys
    both = next(w for c, r, w in shapes if (c, r) == (64, 512))
    assert "matting512/stage0" in both and "matting1024/stage1" in both
    run, skipped = plan_shapes([512], [1, 16], max_elements=2 ** 22, max_bytes=2 ** 30)
    assert all(s.elements <= 2 ** 22 for s in run)
    assert {(s["batch"], s["channels"], s["size"]) for s in skipped} >= {(1, 64, 512), (16, 64, 512)}
    assert all("reason" in s and s["reason"] for s in skipped)
    with pytest.raises(ValueError, match="multiple of 16"):
        stage_shapes([100])


def test_bench_shape_is_well_formed_json_with_ratios() -> None:
    result = bench_shape(OpShape(1, 8, 8, "test"), ["kernel", "index"], pair_factory, repeats=2)
    result = json.loads(json.dumps(result))
    for name in ("kernel", "index"):
        assert set(result["results"][name]) == set(MODES)
        for entry in result["results"][name].values():
            assert len(entry["samples_s"]) == 2 and entry["median_s"] > 0 and entry["ratio"] > 0
            assert entry["peak_bytes"] >= 0
    assert set(result["results"][UP_BASELINE]) == {"up_fwd", "up_fwdbwd"}
    assert set(result["results"][DOWN_BASELINE]) == {"down_fwd", "down_fwdbwd"}
    for entry in [*result["results"][UP_BASELINE].values(), *result["results"][DOWN_BASELINE].values()]:
        assert entry["ratio"] == pytest.approx(1.0)
    # bilinear upsampling of 1×8×4×4 -> 8×8 output: at least the 2 KiB output is allocated
    assert result["results"][UP_BASELINE]["up_fwd"]["peak_bytes"] >= 8 * 8 * 8 * 4


def test_run_benchmark_writes_every_output(tmp_path) -> None:
    up = {"fast": lambda y, k: F.interpolate(y, scale_factor=2) * 1.0,
          "fast_unfold": lambda y, k: F.interpolate(y, scale_factor=2) + 0.0,
          "F.interpolate(bilinear)": lambda y, k: F.interpolate(y, scale_factor=2, mode="bilinear")}
    down = {"fast": lambda x, k: F.avg_pool2d(x, 2), "fast_unfold": lambda x, k: F.avg_pool2d(x, 2),
            "F.avg_pool2d(2)": lambda x, k: F.avg_pool2d(x, 2)}
    cfg = BenchParams(repeats=2, batch_sizes=(1,), operators=("kernel", "index"), op_matting_sizes=(32,),
                      op_include_toy=False, op_max_elements=64 * 16 * 16, network_variants=("bilinear", "a2u"),
                      network_sizes=(16, 32), metrics_size=64, metrics_repeats=1, export=False, ratio_threads=(1,),
                      step_repeats=2, network_repeats=2, floor_cases=(("toy_train", 20, 32),))
    base = BaseParams(seed=0, profile="smoke", device="cpu")
    out = run_benchmark(cfg, base, tmp_path, network_factory=TinyNet, pair_factory=pair_factory,
                        implementations=(up, down), step_builder=stand_in_step)
    for name in ("ops.json", "networks.json", "steps.json", "floor.json", "targets.json", "table.md", "ratios.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    steps = json.loads((tmp_path / "steps.json").read_text())
    assert [(c["kind"], c["batch"], c["size"]) for c in steps["cases"]] == [
        ("toy_train", 20, 32), ("toy_train", 100, 32), ("matting_train", 4, 64), ("matting_train", 2, 512)]
    assert steps["cases"][0]["threads"]["1"]["bilinear"]["ratio_vs_bilinear"] == pytest.approx(1.0)
    checks = {c.get("key"): c for c in out["targets"]["checks"]}
    assert checks["toy_step_b20_t1"]["value"] is not None and checks["forward_512_t1"]["value"] is None
    assert "## Training steps" in (tmp_path / "table.md").read_text()
    ops = json.loads((tmp_path / "ops.json").read_text())
    # 32² matting input: stages (64,32) (64,16) (128,8) (256,4); only N·C·R² ≤ 16384 runs, smallest first
    assert [(s["shape"]["channels"], s["shape"]["size"]) for s in ops["shapes"]] == [(256, 4), (128, 8), (64, 16)]
    assert [(s["channels"], s["size"]) for s in ops["skipped"]] == [(64, 32)]
    assert ops["reassembly"] and ops["reassembly"][0]["up"]["fast"]["max_abs_diff_vs_unfold"] == 0.0
    nets = json.loads((tmp_path / "networks.json").read_text())
    assert [item["size"] for item in nets["sizes"]] == [16, 32]
    assert nets["sizes"][0]["variants"]["bilinear"]["time_ratio_vs_bilinear"] == pytest.approx(1.0)
    assert nets["sizes"][1]["variants"]["a2u"]["memory_ratio_vs_bilinear"] > 1.0  # 16 vs 8 hidden channels
    table = (tmp_path / "table.md").read_text()
    assert "## Targets" in table and "kernel" in table and "(64, 32)" not in table
    assert "N·C·R²" in table  # the skip reason is printed
    assert out["targets"]["checks"]


def test_headline_ratios_are_rows_of_one_metric_column() -> None:
    """`dvc metrics show` gets one `a2u_x` column however many ratios the bench measures (120 columns)."""
    from pipeline.bench.dvc_metrics import METRIC_KEY, RATIO_FILES, metric_files

    headline = {"up_x": 2.5, "down_x": 5.0, "net_x": 1.2, "toy_step_x": 2.3, "mat_step_x": 1.3}
    files = metric_files(headline)
    assert set(files) == {f"{name}.json" for name in RATIO_FILES.values()}
    assert all(list(content) == [METRIC_KEY] for content in files.values())
    assert files["toy_step.json"] == {"a2u_x": 2.3} and "net_1024.json" not in metric_files({"up_x": 1.0})
