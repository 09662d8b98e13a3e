"""Training-step and forward ratio cases, the floor profile of an A2U step, and the step/forward targets."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from pipeline.bench.floor import floor_summary, profile_labels, profile_step
from pipeline.bench.steps import StepCase, bench_case, bench_cases, case_median, case_ratio, matting_step, toy_step
from pipeline.bench.targets import evaluate_targets, headline_ratios, step_and_forward_checks


def fake_builder(case, variant, seed, device):
    net = nn.Linear(4, 8 if variant == "a2u" else 2)
    x = torch.randn(16, 4)
    return lambda: net(x).sum().backward()


def test_step_case_validates_and_labels() -> None:
    assert StepCase("toy_train", 20, 32).label == "toy train step, batch 20, 32²"
    with pytest.raises(ValueError, match="kind"):
        StepCase("train", 1, 32)
    with pytest.raises(ValueError, match="batch and size"):
        StepCase("toy_train", 0, 32)


def test_bench_case_interleaves_every_thread_count_and_restores_threads() -> None:
    before = torch.get_num_threads()
    result = json.loads(json.dumps(bench_case(StepCase("toy_train", 2, 8), ["bilinear", "a2u"], [1, 2], repeats=3,
                                              builder=fake_builder)))
    assert torch.get_num_threads() == before
    assert set(result["threads"]) == {"1", "2"}
    for per in result["threads"].values():
        assert per["bilinear"]["ratio_vs_bilinear"] == pytest.approx(1.0) and len(per["a2u"]["samples_s"]) == 3
    with pytest.raises(ValueError, match="baseline"):
        bench_case(StepCase("toy_train", 2, 8), ["a2u"], [1], 1, builder=fake_builder)


def test_bench_cases_skip_with_the_budget_key_and_ratios_are_found() -> None:
    cases = [StepCase("toy_train", 2, 8), StepCase("matting_train", 2, 16)]
    done = bench_cases(cases, ["bilinear", "a2u"], [1], 2, builder=fake_builder)
    assert case_ratio(done, "toy_train", 2, 8) == done["cases"][0]["threads"]["1"]["a2u"]["ratio_vs_bilinear"]
    assert case_ratio(done, "toy_train", 2, 8, threads=2) is None and case_ratio(done, "toy_train", 9, 8) is None
    assert case_median(done, "matting_train", 2, 16, "a2u", 1) > 0
    spent = bench_cases(cases, ["bilinear", "a2u"], [1], 2, time_budget_s=1e-9, builder=fake_builder)
    assert not spent["cases"] and all("bench.step_time_budget_s" in s["reason"] for s in spent["skipped"])


def test_real_step_builders_train() -> None:
    step = toy_step("a2u", batch=2)
    step()
    matting = matting_step("bilinear", batch=2, crop=32)
    matting()


def test_floor_profile_of_a_toy_a2u_step_finds_every_labelled_range() -> None:
    result = profile_step(toy_step("a2u", batch=2), warmup=1, steps=1, top=5)
    assert set(result["labels"]) == set(profile_labels())
    for label, entry in result["labels"].items():
        assert entry["s"] > 0 and 0 < entry["share"] < 1, label
    assert 0 < result["other_share"] < 1 and len(result["top_ops"]) == 5
    summary = floor_summary(result, step_s=2.0, baseline_step_s=1.0)
    labelled = 2.0 * sum(v["share"] for v in result["labels"].values())
    assert summary["ratio"] == 2.0 and summary["floor_ratio"] == pytest.approx(1.0 + labelled)


def test_step_and_forward_targets_per_thread_count_and_headline() -> None:
    steps = {"threads": ["1", "2"], "cases": [
        {"kind": "toy_train", "batch": 20, "size": 32, "baseline": "bilinear",
         "threads": {"1": {"a2u": {"ratio_vs_bilinear": 1.5}}, "2": {"a2u": {"ratio_vs_bilinear": 1.7}}}}]}
    nets = {"threads": ["1", "2"], "sizes": [{"size": 512, "variants": {"a2u": {"threads": {
        "1": {"time_ratio_vs_bilinear": 1.05}, "2": {"time_ratio_vs_bilinear": 1.2}}}}}]}
    checks = {c["key"]: c for c in step_and_forward_checks(steps, nets)}
    assert checks["toy_step_b20_t1"]["met"] is True and checks["toy_step_b20_t2"]["met"] is False
    assert checks["forward_512_t1"]["met"] is True and checks["forward_512_t2"]["met"] is False
    assert checks["matting_step_crop512_b2_t1"]["value"] is None and checks["matting_step_crop512_b2_t1"]["met"] is None
    targets = evaluate_targets({"shapes": [], "reassembly": []}, nets, None, steps=steps)
    assert all({"name", "value", "limit", "met"} <= set(c) for c in targets["checks"])
    headline = headline_ratios(targets)
    assert headline["toy_step_b20_t2"] == 1.7 and headline["forward_1024_t1"] is None
