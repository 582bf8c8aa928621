"""The stereo protocol (dual-lens, DESIGN §6): noisy left luma as the mono target, noisy right colour reference.

The mono camera gets noise std 0.01·√κ; the colour camera 0.03·√κ (Setup1) or 0.07·√κ (Setup2), applied after
the scale gap (the small colour sensor is the noisy one). The truth is the clean left colour image. The noise
is seeded per dataset and setup, so every engine and every run sees the same pixels.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamfuse.color import luma
from streamfuse.data.degrade import downsample, sensor_noise
from streamfuse.evaluation.case import Case
from streamfuse.evaluation.data import STEREO_PAIRS, require
from streamfuse.evaluation.video import crop8
from streamfuse.imageio import read_rgb

MONO_NOISE = 0.01
SETUPS: dict[str, float] = {"Setup1": 0.03, "Setup2": 0.07}
STEREO_SCALES: tuple[float, ...] = (1, 4)


def _rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, parts)).encode()))


def stereo_case(dataset: str, left: np.ndarray, right: np.ndarray, scale: float, setup: str) -> Case:
    """One dual-lens case from a clean left/right colour pair."""
    mono = sensor_noise(luma(left), MONO_NOISE, _rng(dataset, scale, setup, "mono"))
    ref = sensor_noise(downsample(right, scale), SETUPS[setup], _rng(dataset, scale, setup, "ref"))
    return Case(
        protocol="stereo", dataset=dataset, case=dataset, scale=scale, target=setup, mono=mono, ref=ref, truth=left
    )


def stereo_cases(folder: Path, scales: tuple[float, ...] = STEREO_SCALES) -> Iterator[Case]:
    """Every (pair, scale, setup) case of the stereo protocol, in a fixed order."""
    for dataset, (left_name, right_name) in STEREO_PAIRS.items():
        left = crop8(read_rgb(require(folder, left_name)))
        right = crop8(read_rgb(require(folder, right_name)))
        for scale in scales:
            for setup in SETUPS:
                yield stereo_case(dataset, left, right, scale, setup)
