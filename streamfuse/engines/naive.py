"""The ``naive`` baseline: bicubic upsampling of the reference chroma, no alignment."""

from __future__ import annotations

import cv2
import numpy as np

from streamfuse.color import rgb_to_ycbcr, ycbcr_to_rgb
from streamfuse.engines.base import Engine, ReferenceState


class NaiveEngine(Engine):
    """Keeps the mono luma and takes chroma from the bicubically upsampled reference.

    Chroma stays in floating point until the single final rounding to RGB, so the baseline is not penalized
    by intermediate 8-bit rounding (this reproduces the DESIGN §7 "no-align" numbers).
    """

    name = "naive"

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        size = (mono.shape[1], mono.shape[0])
        chroma = state.cache.get(size)
        if chroma is None:
            cbcr = rgb_to_ycbcr(state.rgb.astype(np.float32))[..., 1:]
            chroma = cv2.resize(cbcr, size, interpolation=cv2.INTER_CUBIC)
            state.cache[size] = chroma
        return ycbcr_to_rgb(cv2.merge([mono.astype(np.float32), *cv2.split(chroma)]))
