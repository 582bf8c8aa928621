"""Colour conversions shared by every engine, source and metric (BT.601 full range, RGB order)."""

from __future__ import annotations

import cv2
import numpy as np

# BT.601 full-range (JPEG) RGB -> YCbCr matrix; offsets are +128 on Cb and Cr.
_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32)
_YCC2RGB = np.linalg.inv(_RGB2YCC).astype(np.float32)
_RGB2YCC_AFFINE = np.hstack([_RGB2YCC, np.array([[0.0], [128.0], [128.0]], np.float32)])
_YCC2RGB_AFFINE = np.hstack([_YCC2RGB, -_YCC2RGB[:, 1:] @ np.full((2, 1), 128.0, np.float32)])


def to_u8(x: np.ndarray) -> np.ndarray:
    """Round and clip any numeric array to uint8."""
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 image, rounded to uint8 as a mono camera would deliver it."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def rgb_diff_to_cbcr(diff: np.ndarray) -> np.ndarray:
    """The Cb/Cr difference planes (H×W×2 float32) of an RGB difference image: chroma is linear in RGB, so the
    +128 offsets cancel and one 2×3 transform of the difference replaces two full conversions."""
    return cv2.transform(np.ascontiguousarray(diff, dtype=np.float32), _RGB2YCC[1:])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB -> YCbCr planes (H×W×3, order Y, Cb, Cr). uint8 in gives uint8 out; float in gives float32 out."""
    if rgb.dtype == np.uint8:
        ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        return ycrcb[..., [0, 2, 1]]
    return cv2.transform(np.ascontiguousarray(rgb, dtype=np.float32), _RGB2YCC_AFFINE)


def ycbcr_to_rgb(ycbcr: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """YCbCr (order Y, Cb, Cr; uint8 or float) -> RGB uint8.

    ``scratch``: an optional float32 array of the same shape for the intermediate, so per-frame callers avoid
    allocating (and page-faulting) a fresh full-resolution buffer each time.
    """
    if ycbcr.dtype == np.uint8:
        return cv2.cvtColor(np.ascontiguousarray(ycbcr[..., [0, 2, 1]]), cv2.COLOR_YCrCb2RGB)
    # One affine transform (offsets folded in), then saturating round to uint8: ~10x faster than numpy.
    rgb = cv2.transform(np.ascontiguousarray(ycbcr, dtype=np.float32), _YCC2RGB_AFFINE, dst=scratch)
    return cv2.convertScaleAbs(cv2.max(rgb, 0.0, dst=rgb))


def merge_luma_chroma(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Combine a mono luma plane with chroma planes into RGB uint8 (chroma is rounded to 8 bits first)."""
    ycrcb = cv2.merge([to_u8(y), to_u8(cr), to_u8(cb)])
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """Replicate a mono plane into an RGB image (the grey fallback)."""
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
