"""Seed statistics of the toy study: paired differences with Student-t intervals, curves, plateaus."""
from __future__ import annotations

import pytest
from scipy import stats

from pipeline.toy.runner import aggregate_seeds, compare_to_baseline
from pipeline.toy.stats import describe_difference, mean_curve, paired_difference, plateau_epoch


def test_paired_difference_uses_the_student_t_interval_of_the_per_seed_differences():
    out = paired_difference([20.0, 21.0, 21.8], [19.0, 19.9, 20.5])
    diffs = [1.0, 1.1, 1.3]
    mean, sd = sum(diffs) / 3, stats.tstd(diffs)
    half = stats.t.ppf(0.975, 2) * sd / 3 ** 0.5
    assert out["diffs"] == pytest.approx(diffs) and out["mean"] == pytest.approx(mean)
    assert out["interval"] == pytest.approx([mean - half, mean + half])
    assert out["significant"] is True and out["interval"][0] > 0
    noisy = paired_difference([20.0, 18.0, 21.0], [19.0, 19.5, 20.0])
    assert noisy["interval"][0] < 0 < noisy["interval"][1] and noisy["significant"] is False
    single = paired_difference([20.0], [19.0])
    assert single["interval"] is None and single["significant"] is False
    with pytest.raises(ValueError, match="equally many seeds"):
        paired_difference([1.0, 2.0], [1.0])


def test_words_say_which_side_and_whether_significant():
    text = describe_difference("a2u", "bilinear", paired_difference([15.0, 15.2, 15.1], [17.0, 17.1, 17.3]))
    assert text.startswith("a2u is 2.03 dB below bilinear (95% CI") and text.endswith("significant).")
    assert "not significant" in describe_difference("x", "bilinear", paired_difference([1, 3, 2], [2, 2, 2.1]))


def test_curves_and_plateaus():
    assert mean_curve([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]) == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="different lengths"):
        mean_curve([[1.0], [1.0, 2.0]])
    assert plateau_epoch([10.0, 12.0, 12.05, 12.1, 12.08]) == 2
    assert plateau_epoch([10.0, 11.0, 12.0]) is None     # still rising at the end
    assert plateau_epoch([10.0]) is None


def _run(seed: int, psnr: float) -> dict:
    metrics = {"psnr": psnr, "ssim": 0.5, "mae": 0.1, "mse": 0.01, "epoch": 2}
    return {"seed": seed, "params": 10, "n_test": 5, "best": metrics, "last": metrics,
            "curve": {"epoch": [1, 2], "psnr": [psnr - 1, psnr]}, "train_seconds": 3.0}


def test_aggregation_pairs_every_operator_with_the_baseline_by_seed():
    results = {"bilinear": aggregate_seeds([_run(0, 17.0), _run(1, 17.5), _run(2, 17.2)]),
               "a2u": aggregate_seeds([_run(0, 15.0), _run(1, 15.6), _run(2, 15.1)])}
    compare_to_baseline(results, "bilinear", 0.95)
    assert "paired" not in results["bilinear"]
    paired = results["a2u"]["paired"]
    assert paired["diffs"] == pytest.approx([-2.0, -1.9, -2.1]) and paired["significant"]
    assert paired["text"].startswith("-2.00 [") and paired["text"].endswith("*")
    assert results["a2u"]["curve"] == {"epoch": [1, 2], "psnr": pytest.approx([14.233333, 15.233333])}
