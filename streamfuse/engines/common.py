"""Torch-free numpy helpers shared by the learned engines and their trainers (same preprocessing in both)."""

from __future__ import annotations

import cv2
import numpy as np

from streamfuse.engines.guided import guided_coefficients


def pad_to(x: np.ndarray, multiple: int) -> np.ndarray:
    """Replicate-pad the last two axes of (..., h, w) up to multiples of ``multiple`` (a graph's pad multiple)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="edge")


def upsample_chroma(
    mono: np.ndarray, mono_w: np.ndarray, chroma_w: np.ndarray, detail: float, radius: int, eps: float
) -> np.ndarray:
    """Working-resolution chroma (h×w×2, 0..255 scale) to the mono size: bilinear, plus ``detail`` × the
    high-resolution detail that a luma-guided filter would add (0 = none, 1 = the full guided filter)."""
    full = (mono.shape[1], mono.shape[0])
    base = cv2.resize(chroma_w, full, interpolation=cv2.INTER_LINEAR)
    if detail <= 0:
        return base
    guide = mono_w.astype(np.float32) * (1.0 / 255.0)
    a, b = guided_coefficients(guide, chroma_w, radius, eps)
    a = cv2.resize(a, full, interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, full, interpolation=cv2.INTER_LINEAR)
    guided = a * (mono.astype(np.float32) * (1.0 / 255.0))[..., None] + b
    return base + detail * (guided - base)


def crop_chroma(out: np.ndarray, size: tuple[int, int], scale: float = 255.0, offset: float = 0.0) -> np.ndarray:
    """A graph's padded (2, H', W') chroma output -> (h, w, 2) float32 on the 0..255 scale, cropped to ``size``
    (w, h): ``out * scale + offset``."""
    w, h = size
    return np.ascontiguousarray(out[:, :h, :w].transpose(1, 2, 0) * scale + offset, dtype=np.float32)
