"""The camera model of the synthetic rig: sensor noise, the scale gap and parallax warps (one frame at a time).

It sits below sources/ (the synthetic camera uses it) and data/ (the dataset makers re-use it through
``streamfuse.data.degrade``), so both share one implementation.
"""

from __future__ import annotations

import cv2
import numpy as np


def sensor_noise(img: np.ndarray, a: float, rng: np.random.Generator) -> np.ndarray:
    """Signal-dependent Gaussian noise with std a·√κ, κ the noise-free intensity on a 0..1 scale.

    This is the dual-lens paper's camera model (Setup1: colour 0.03, mono 0.01; Setup2: colour 0.07).
    """
    if a <= 0:
        return img
    k = img.astype(np.float32) * (1.0 / 255.0)
    noisy = k + rng.standard_normal(k.shape, dtype=np.float32) * (a * np.sqrt(k))
    return np.clip(np.rint(noisy * 255.0), 0, 255).astype(np.uint8)


def reference_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Size (w, h) of a colour camera that is ``scale`` times coarser than a (width, height) mono camera."""
    if scale < 1:
        raise ValueError(f"scale gap must be >= 1, got {scale}")
    return max(2, round(width / scale)), max(2, round(height / scale))


def downsample(img: np.ndarray, scale: float) -> np.ndarray:
    """Area-downsample by the scale gap s (the protocol's INTER_AREA reference)."""
    if scale == 1:
        return img
    w, h = reference_size(img.shape[1], img.shape[0], scale)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def translation(dx: float, dy: float) -> np.ndarray:
    """3×3 homography of a pure shift."""
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], dtype=np.float64)


def warp_homography(img: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Warp an image by a 3×3 homography (output pixel x samples input at H⁻¹x), replicating borders."""
    h, w = img.shape[:2]
    return cv2.warpPerspective(
        img,
        np.asarray(homography, dtype=np.float64),
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT101,
    )
