"""Matting metrics against the Octave-run MATLAB reference (../shared/golden) and hand-computed cases."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pipeline.matting.metrics import (METRIC_NAMES, compute_matting_metrics, connectivity_error,
                                      gaussian_derivative_kernels, gradient_error, mse, sad)
from tests.conftest import shared_path

RTOL = 1e-5


def _golden_cases() -> list[dict]:
    return json.loads(shared_path("golden", "golden.json").read_text())


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 2, path
    return image


def test_golden_cases_all_metrics():
    """Every golden case, all four metrics, to 1e-5 relative (45 cases, real and synthetic)."""
    cases = _golden_cases()
    assert len(cases) >= 45
    failures = []
    for case in cases:
        folder = shared_path("golden", "cases", case["case"])
        pred, gt, trimap = (_read(folder / f"{n}.png") for n in ("pred", "gt", "trimap"))
        assert int((trimap == 128).sum()) == case["unknown_pixels"], case["case"]
        got = compute_matting_metrics(pred, gt, trimap)
        for metric in METRIC_NAMES:
            if not np.isclose(got[metric], case[metric], rtol=RTOL, atol=0.0):
                failures.append(f"{case['case']}.{metric}: {got[metric]!r} vs {case[metric]!r}")
    assert not failures, "\n".join(failures)


def test_single_precision_threshold_matters_on_golden_case():
    """A float64 Conn (153/255 just below 0.6) would miss the reference; ours must not (guards the cast)."""
    case = next(c for c in _golden_cases() if c["case"] == "GT01_blur")
    folder = shared_path("golden", "cases", "GT01_blur")
    pred, gt, trimap = (_read(folder / f"{n}.png") for n in ("pred", "gt", "trimap"))
    assert connectivity_error(pred, gt, trimap) == pytest.approx(case["conn"], rel=RTOL)
    assert np.isin(pred[trimap == 128], (51, 102, 153, 204)).any()


def _mmagic_vector() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mmagic's 32×32 unit-test vector: GT 255, trimap TL 16×16 = 128, BR = 255, rest 0, pred 0 then pasted."""
    gt = np.full((32, 32), 255, np.uint8)
    trimap = np.zeros((32, 32), np.uint8)
    trimap[:16, :16] = 128
    trimap[16:, 16:] = 255
    pred = np.zeros((32, 32), np.uint8)
    pred[trimap == 255] = 255
    return pred, gt, trimap


def test_mmagic_vector_under_matlab_semantics():
    got = compute_matting_metrics(*_mmagic_vector())
    assert got["sad"] == pytest.approx(0.256, rel=1e-6)
    assert got["mse"] == pytest.approx(1.0, rel=1e-6)
    assert got["grad"] == pytest.approx(0.0028887, rel=1e-4)
    assert got["conn"] == pytest.approx(0.256, rel=1e-6)


def test_one_pixel_difference():
    """One unknown pixel off by 51 (= 0.2): SAD 0.2/1000, MSE 0.04/|U|; a known pixel off by 255 counts nothing."""
    gt = np.zeros((20, 20), np.uint8)
    trimap = np.zeros((20, 20), np.uint8)
    trimap[5:15, 5:15] = 128
    pred = gt.copy()
    pred[10, 10] = 51
    pred[0, 0] = 255  # outside U
    assert sad(pred, gt, trimap) == pytest.approx(0.2 / 1000, rel=1e-12)
    assert mse(pred, gt, trimap) == pytest.approx(0.04 / 100, rel=1e-12)
    assert gradient_error(pred, gt, trimap) > 0
    # Conn: at t = 0.1, 0.2 the intersection is empty (gt = 0), so every pixel keeps l = 1: φ = 1 both ways.
    assert connectivity_error(pred, gt, trimap) == 0.0


def test_connectivity_hand_computed():
    """Two single-pixel components, worked by hand through the thresholds of compute_connectivity_error.m.

    (2, 2) = 255 in both; (0, 0): pred 204 (0.8), gt 102 (0.4). For t = 0.1…0.4 both pixels are components of
    size 1 (a tie: the first in column-major order, (0, 0), is kept), so (2, 2) gets l = 0 at t = 0.1; at
    t = 0.5 only (2, 2) remains and (0, 0) gets l = 0.4. (0, 0): φ_P = 1 − 0.4 = 0.6, φ_G = 1 (d = 0).
    (2, 2): d = 1 both ways. Everything else: d = 0. Conn = 0.4 / 1000.
    """
    trimap = np.full((5, 5), 128, np.uint8)
    gt = np.zeros((5, 5), np.uint8)
    gt[2, 2], gt[0, 0] = 255, 102
    pred = gt.copy()
    pred[0, 0] = 204
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.4 / 1000, rel=1e-6)


def test_connectivity_tie_takes_first_component_in_column_major_order():
    """(0, 2) = 255 in both; (2, 0): pred 127, gt 102. Column-major order keeps (2, 0) through t = 0.4, so it
    gets l = 0.4 and d_P = 25/255 < 0.15: Conn = 0. Row-major order would keep (0, 2) and give 25/255/1000."""
    trimap = np.full((3, 3), 128, np.uint8)
    gt = np.zeros((3, 3), np.uint8)
    gt[0, 2], gt[2, 0] = 255, 102
    pred = gt.copy()
    pred[2, 0] = 127
    assert connectivity_error(pred, gt, trimap) == 0.0
    assert connectivity_error(pred.T, gt.T, trimap.T) == pytest.approx(25 / 255 / 1000, rel=1e-6)


def test_all_known_trimap_is_zero_not_nan():
    pred = np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.uint8)
    gt = np.zeros((16, 16), np.uint8)
    trimap = np.full((16, 16), 255, np.uint8)
    got = compute_matting_metrics(pred, gt, trimap)
    assert got == {"sad": 0.0, "mse": 0.0, "grad": 0.0, "conn": 0.0}


def test_gradient_kernel_is_9x9_l2_normalised():
    gauss, dgauss = gaussian_derivative_kernels(1.4)
    kernel = np.outer(gauss, dgauss)
    assert kernel.shape == (9, 9)
    assert np.sum(kernel ** 2) == pytest.approx(1.0, rel=1e-12)
    assert np.allclose(kernel, -kernel[:, ::-1])  # odd along x


def test_gradient_is_invariant_to_affine_rescaling_of_a_matte():
    """mat2gray normalises each matte: scaling pred's range 0–100 to 0–255 must not change Grad."""
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (24, 24)).astype(np.uint8)
    trimap = np.full((24, 24), 128, np.uint8)
    base = rng.integers(0, 101, (24, 24))
    base[0, 0], base[0, 1] = 0, 100
    narrow, wide = base.astype(np.uint8), (base * 2.55).astype(np.float64)
    assert gradient_error(narrow, gt, trimap) == pytest.approx(gradient_error(wide, gt, trimap), rel=1e-6)


def test_trimap_with_127_is_rejected():
    pred = gt = np.zeros((4, 4), np.uint8)
    trimap = np.full((4, 4), 127, np.uint8)
    with pytest.raises(ValueError, match="127"):
        sad(pred, gt, trimap)


def test_size_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same H×W"):
        compute_matting_metrics(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), np.zeros((4, 4), np.uint8))


def test_out_of_range_matte_is_rejected():
    with pytest.raises(ValueError, match="pred must lie in 0–255"):
        sad(np.full((2, 2), 300.0), np.zeros((2, 2)), np.zeros((2, 2), np.uint8))


def test_inputs_are_not_modified():
    pred, gt, trimap = _mmagic_vector()
    copies = pred.copy(), gt.copy(), trimap.copy()
    compute_matting_metrics(pred, gt, trimap)
    assert all(np.array_equal(a, b) for a, b in zip((pred, gt, trimap), copies))
