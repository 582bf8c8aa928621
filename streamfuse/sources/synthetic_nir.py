"""A synthetic NIR rig: grey "near-infrared" frames simulated from colour frames, for the demo and the tests.

This is a simulation, NOT real NIR. It imitates the few effects that make NIR differ from visible luma, so the
pipeline and the engines can be exercised without an NIR camera:

- a spectral model: NIR reflectance starts from a red-weighted mix of the linear RGB (NIR sits next to red);
  vegetation (green excess) is bright in NIR (the "red edge" of chlorophyll), and blue sky is dark (Rayleigh
  scattering is weak at 800-1000 nm);
- sensor effects: exposure, a night gain that amplifies shot and read noise, optional optical blur.

Real NIR also differs in textiles, skin, water and shadows in ways this model ignores; engines are trained on
the real pairs of ``shared/data/nir-train`` and use this only as augmentation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from streamfuse.color import to_u8
from streamfuse.config.schema import SyntheticConfig
from streamfuse.sources.base import CapturedFrame
from streamfuse.sources.synthetic import SyntheticCamera


@dataclass(frozen=True)
class NirParams:
    """Parameters of the spectral and sensor model (defaults: a daylight NIR camera)."""

    vegetation_gain: float = 1.0  # how much brighter green vegetation is in NIR
    sky_damping: float = 0.6  # how much darker blue sky is in NIR (0..1)
    red_weight: float = 0.55  # weight of red in the base reflectance (green and blue share the rest)
    exposure: float = 1.0  # scene exposure multiplier
    night_gain: float = 1.0  # sensor gain (>1 at night: brighter image, more noise)
    read_noise: float = 0.004  # read-noise std on a 0..1 scale, before the gain
    blur_sigma: float = 0.0  # optical blur of the NIR lens (pixels)


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def simulate_nir(
    rgb: np.ndarray, params: NirParams | None = None, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Simulated NIR (H×W uint8) of an RGB uint8 frame; ``rng`` adds sensor noise (None: noise-free)."""
    p = params or NirParams()
    lin = (rgb.astype(np.float32) * (1.0 / 255.0)) ** 2.2
    r, g, b = lin[..., 0], lin[..., 1], lin[..., 2]
    gb = (1.0 - p.red_weight) * 0.5
    base = p.red_weight * r + gb * g + gb * b
    total = r + g + b + 1e-3
    vegetation = _smoothstep((2.0 * g - r - b) / total, 0.05, 0.35)
    sky = _smoothstep((b - r) / (b + 1e-3), 0.15, 0.45) * _smoothstep(total / 3.0, 0.15, 0.5)
    nir = base * (1.0 - p.sky_damping * sky) + p.vegetation_gain * vegetation * (0.25 + 1.5 * g)
    nir = np.clip(nir * p.exposure, 0.0, 1.0)
    if p.blur_sigma > 0:
        nir = cv2.GaussianBlur(nir, (0, 0), p.blur_sigma)
    if rng is not None:
        shot = np.sqrt(np.maximum(nir, 0.0) * (0.002 * p.night_gain))
        noise = rng.standard_normal(nir.shape, dtype=np.float32) * (shot + p.read_noise)
        nir = nir + noise
    nir = np.clip(nir * p.night_gain, 0.0, 1.0) ** (1.0 / 2.2)
    return to_u8(nir * 255.0)


def random_params(rng: np.random.Generator) -> NirParams:
    """Randomized model parameters for training augmentation (daylight to dusk)."""
    return NirParams(
        vegetation_gain=float(rng.uniform(0.5, 1.6)),
        sky_damping=float(rng.uniform(0.2, 0.9)),
        red_weight=float(rng.uniform(0.4, 0.8)),
        exposure=float(rng.uniform(0.7, 1.3)),
        night_gain=float(rng.choice([1.0, 1.0, 2.0, 4.0])),
        read_noise=float(rng.uniform(0.0, 0.01)),
        blur_sigma=float(rng.choice([0.0, 0.0, 0.7])),
    )


class SyntheticNirCamera(SyntheticCamera):
    """The NIR camera of the synthetic rig: the mono camera's scene through the spectral model (GRAY8 frames).

    Same timing, size, view and ground truth as the synthetic mono camera, so this camera plus the synthetic colour
    camera is the "NIR HR + colour LR" rig, and this camera alone is the "NIR at night" rig.
    """

    kind = "nir"

    def __init__(
        self, cfg: SyntheticConfig, fps: float, limit: int | None = None, params: NirParams | None = None, **view: Any
    ) -> None:
        super().__init__(cfg, "nir", fps, limit, **view)
        self.params = params or NirParams()

    def frames(self) -> Iterator[CapturedFrame]:
        period = 1e9 / self.fps
        for i, truth in enumerate(itertools.islice(self._scene(), self.limit)):
            image = simulate_nir(truth, self.params, self._rng)
            yield CapturedFrame(round(i * period), image, truth if self.cfg.truth else None)
