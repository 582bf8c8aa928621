"""A tiny stand-in for shared/data/nir-train, made by the tests: simulated NIR + colour pairs in every category.

The colour image is stored warped by the inverse of a small rotation, with the matrix ``M`` that aligns it
(as in the real folder), so the loader's alignment and border crop are exercised. Simulated NIR, not real.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from conftest import textured_scene

from streamfuse.data.nir import CATEGORIES
from streamfuse.sources.synthetic_nir import simulate_nir


def make_nir_folder(root: Path, per_category: int = 1, size: tuple[int, int] = (240, 208)) -> Path:
    """Write ``per_category`` pairs per category under ``root`` (w, h = ``size``); returns ``root``."""
    w, h = size
    for ci, cat in enumerate(CATEGORIES):
        (root / cat).mkdir(parents=True, exist_ok=True)
        for k in range(per_category):
            rgb = textured_scene(h, w, seed=10 * ci + k)
            m = cv2.getRotationMatrix2D((w / 2, h / 2), 3.0, 1.0)
            raw = cv2.warpAffine(rgb, m, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
            stem = root / cat / f"{k + 1:04d}"
            cv2.imwrite(f"{stem}_nir.jpg", simulate_nir(rgb), [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(f"{stem}_rgb.jpg", cv2.cvtColor(raw, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            np.save(f"{stem}_nir.npy", m)
    return root
