"""Quality metrics of a colorized frame against the true colour frame: PSNR (RGB, CbCr) and SSIM.

Every metric excludes a border (8 pixels by default, as the protocols in DESIGN §6 state), because warps and
resampling are undefined there. Chroma is computed from the RGB images with ``streamfuse.color`` in floating
point (no rounding), so the CbCr score measures the delivered RGB output.
LPIPS is not provided: it needs network weights that cannot be downloaded here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamfuse.color import rgb_diff_to_cbcr

BORDER = 8
PEAK = 255.0
# SSIM constants of Wang et al. (2004): 11×11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
_C1 = (0.01 * PEAK) ** 2
_C2 = (0.03 * PEAK) ** 2


def crop_border(img: np.ndarray, border: int = BORDER) -> np.ndarray:
    """The image without ``border`` pixels on each side."""
    if border <= 0:
        return img
    if min(img.shape[:2]) <= 2 * border:
        raise ValueError(f"image {img.shape[1]}x{img.shape[0]} is too small for a {border}-pixel border")
    return img[border:-border, border:-border]


def _check_pair(out: np.ndarray, truth: np.ndarray) -> None:
    if out.shape != truth.shape:
        raise ValueError(f"output shape {out.shape} differs from the truth shape {truth.shape}")


def mse_to_psnr(mse: float, peak: float = PEAK) -> float:
    """PSNR in dB of a mean squared error; identical images give +inf."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def psnr(out: np.ndarray, truth: np.ndarray, border: int = BORDER) -> float:
    """PSNR over every channel of two images (RGB uint8 for ``psnr_rgb``)."""
    _check_pair(out, truth)
    diff = crop_border(out, border).astype(np.float64) - crop_border(truth, border).astype(np.float64)
    return mse_to_psnr(float(np.mean(diff * diff)))


def psnr_cbcr(out_rgb: np.ndarray, truth_rgb: np.ndarray, border: int = BORDER) -> float:
    """PSNR of the chroma planes (BT.601 Cb and Cr, one MSE pooled over both) of two RGB images."""
    _check_pair(out_rgb, truth_rgb)
    a, b = crop_border(out_rgb, border), crop_border(truth_rgb, border)
    diff = rgb_diff_to_cbcr(cv2.subtract(a, b, dtype=cv2.CV_32F) if a.dtype == np.uint8 else a - b)
    return mse_to_psnr(cv2.norm(diff, cv2.NORM_L2SQR) / diff.size)


def _gauss(x: np.ndarray) -> np.ndarray:
    size = 2 * SSIM_RADIUS + 1
    return cv2.GaussianBlur(x, (size, size), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)


def ssim(out: np.ndarray, truth: np.ndarray, border: int = BORDER) -> float:
    """Mean SSIM (Gaussian window, sigma 1.5) computed per channel and averaged over the channels.

    Colour images are scored per RGB channel (the luma of a colorized frame is the mono input, so luma-only
    SSIM would hide colour errors). Only windows that lie wholly inside the cropped image are averaged.
    """
    _check_pair(out, truth)
    a = crop_border(out, border).astype(np.float64)
    b = crop_border(truth, border).astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    r = SSIM_RADIUS
    if min(a.shape[:2]) <= 2 * r:
        raise ValueError(f"image {a.shape[1]}x{a.shape[0]} is too small for SSIM after the border crop")
    scores = []
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        mx, my = _gauss(x), _gauss(y)
        vx = _gauss(x * x) - mx * mx
        vy = _gauss(y * y) - my * my
        cxy = _gauss(x * y) - mx * my
        num = (2 * mx * my + _C1) * (2 * cxy + _C2)
        den = (mx * mx + my * my + _C1) * (vx + vy + _C2)
        scores.append(float(np.mean((num / den)[r:-r, r:-r])))
    return float(np.mean(scores))


def score(out_rgb: np.ndarray, truth_rgb: np.ndarray, border: int = BORDER) -> dict[str, float]:
    """All metrics of one colorized RGB frame: psnr_rgb, psnr_cbcr and ssim."""
    return {
        "psnr_rgb": psnr(out_rgb, truth_rgb, border),
        "psnr_cbcr": psnr_cbcr(out_rgb, truth_rgb, border),
        "ssim": ssim(out_rgb, truth_rgb, border),
    }
