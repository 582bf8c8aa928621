"""The ``naive`` baseline: bicubic upsampling of the reference chroma, no alignment."""

from __future__ import annotations

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma
from streamfuse.engines.base import Engine, ReferenceState


class NaiveEngine(Engine):
    """Keeps the mono luma and takes chroma from the bicubically upsampled reference."""

    name = "naive"

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        size = (mono.shape[1], mono.shape[0])
        chroma = state.cache.get(size)
        if chroma is None:
            chroma = cv2.resize(state.ycbcr[..., 1:], size, interpolation=cv2.INTER_CUBIC)
            state.cache[size] = chroma
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])
