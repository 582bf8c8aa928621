"""Each metric against a value computed by hand, and the 8-pixel border exclusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamfuse.metrics import psnr, psnr_cbcr, score, ssim


def _with_border_junk(img: np.ndarray, border: int = 8) -> np.ndarray:
    """Same interior, wildly different border: a correct metric must not see it."""
    out = img.copy()
    out[:border] = 255 - out[:border]
    out[:, -border:] = 0
    return out


def test_psnr_rgb_of_a_constant_offset():
    truth = np.full((40, 48, 3), 100, np.uint8)
    out = _with_border_junk(np.full((40, 48, 3), 105, np.uint8))
    # MSE = 5² = 25 over the interior -> 10·log10(255² / 25)
    assert psnr(out, truth) == pytest.approx(10 * math.log10(65025 / 25), abs=1e-9)


def test_psnr_of_identical_images_is_infinite():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(img, img) == math.inf


def test_psnr_cbcr_pools_cb_and_cr():
    truth = np.full((32, 40, 3), 128, np.uint8)  # grey: Cb = Cr = 128
    out = truth.copy()
    out[..., 0] = 138  # +10 in red: ΔCb = -0.168736·10, ΔCr = 0.5·10 (BT.601 full range)
    mse = ((0.168736 * 10) ** 2 + (0.5 * 10) ** 2) / 2
    assert psnr_cbcr(_with_border_junk(out), truth) == pytest.approx(10 * math.log10(65025 / mse), abs=1e-3)


def test_psnr_cbcr_ignores_a_pure_luma_change():
    truth = np.full((32, 40, 3), 90, np.uint8)
    out = np.full((32, 40, 3), 160, np.uint8)  # grey to grey: chroma unchanged
    assert psnr_cbcr(out, truth) > 120  # exact up to float rounding of the colour matrix
    assert psnr(out, truth) == pytest.approx(10 * math.log10(65025 / 70**2))


def test_ssim_of_constant_images_is_the_luminance_term():
    a = np.full((40, 40, 3), 100, np.uint8)
    b = np.full((40, 40, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)  # variances are 0, so the contrast term is 1
    assert ssim(_with_border_junk(a), b) == pytest.approx(expected, abs=1e-9)


def test_ssim_is_one_for_identical_and_drops_with_noise():
    rng = np.random.default_rng(1)
    ramp = np.linspace(60, 190, 48)
    img = np.dstack([np.add.outer(ramp, ramp) / 2] * 3).astype(np.uint8)
    noisy = np.clip(img.astype(int) + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(noisy, img) < 0.9


def test_score_keys_and_shape_mismatch():
    img = np.zeros((32, 32, 3), np.uint8)
    assert set(score(img, img)) == {"psnr_rgb", "psnr_cbcr", "ssim"}
    with pytest.raises(ValueError, match="shape"):
        psnr(img, np.zeros((32, 30, 3), np.uint8))
    with pytest.raises(ValueError, match="border"):
        psnr(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
