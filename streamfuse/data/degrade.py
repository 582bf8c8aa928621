"""Camera degradations for the synthetic rig and the dataset makers, and a registry of named degradations.

The camera model (sensor noise, scale gap, parallax warps) is used frame by frame; the registry holds
sequence-level degradations that dataset makers apply by name (``apply_degradations``): sensor noise, the
4:2:0 x264 codec round trip, and the hooks for old-film damage (Pik-Fix) and NIR simulation (CoColor), whose
bodies those engines fill.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np

# The frame-by-frame camera model lives below sources/ (the synthetic camera uses it); re-exported from here.
from streamfuse.camera_model import downsample, reference_size, sensor_noise, translation, warp_homography  # noqa: F401
from streamfuse.data.benchmark import DataError


class Degradation(Protocol):
    """A sequence degradation: RGB (or grey) uint8 frames in, degraded uint8 frames of the same count out."""

    def __call__(self, frames: list[np.ndarray], rng: np.random.Generator, **options: Any) -> list[np.ndarray]: ...


DEGRADATIONS: dict[str, Degradation] = {}


def register_degradation(name: str, replace: bool = False) -> Callable[[Degradation], Degradation]:
    """Decorator that registers a sequence degradation under ``name`` (a duplicate name raises)."""

    def wrap(fn: Degradation) -> Degradation:
        if name in DEGRADATIONS and not replace:
            raise DataError(f"degradation {name!r} is already registered; pick another name or pass replace=True")
        DEGRADATIONS[name] = fn
        return fn

    return wrap


def get_degradation(name: str) -> Degradation:
    """The registered degradation ``name``; an unknown name lists the known ones."""
    try:
        return DEGRADATIONS[name]
    except KeyError:
        raise DataError(f"unknown degradation {name!r}; known: {', '.join(sorted(DEGRADATIONS))}") from None


def apply_degradations(
    frames: list[np.ndarray], steps: Iterable[tuple[str, dict[str, Any]]], rng: np.random.Generator
) -> list[np.ndarray]:
    """Apply named degradations in order, e.g. ``[("sensor_noise", {"a": 0.03}), ("codec_420", {"crf": 23})]``."""
    for name, options in steps:
        frames = get_degradation(name)(frames, rng, **options)
    return frames


# --- camera model ----------------------------------------------------------------------------------------


# --- codec -----------------------------------------------------------------------------------------------


def encode_x264(frames: Sequence[np.ndarray], crf: int, fps: int = 25) -> bytes:
    """Encode RGB frames to an in-memory H.264 (yuv420p) MP4 with PyAV; crf 0 is lossless luma (chroma 4:2:0)."""
    import av

    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return buf.getvalue()


def codec_roundtrip(frames: Sequence[np.ndarray], crf: int, fps: int = 25) -> list[np.ndarray]:
    """The frames after a 4:2:0 x264 encode and decode (even sizes; odd ones are cropped by one pixel)."""
    from streamfuse.data.video import decode_video

    h, w = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    return decode_video(encode_x264([f[:h, :w] for f in frames], crf, fps))


# --- registered sequence degradations --------------------------------------------------------------------


@register_degradation("sensor_noise")
def _noise_step(frames: list[np.ndarray], rng: np.random.Generator, a: float = 0.03) -> list[np.ndarray]:
    return [sensor_noise(f, a, rng) for f in frames]


@register_degradation("codec_420")
def _codec_step(
    frames: list[np.ndarray], rng: np.random.Generator, crf: int | tuple[int, int] = 23
) -> list[np.ndarray]:
    q = int(rng.integers(crf[0], crf[1] + 1)) if isinstance(crf, tuple | list) else int(crf)
    return codec_roundtrip(frames, q)


@register_degradation("old_film")
def old_film_damage(
    frames: list[np.ndarray],
    rng: np.random.Generator,
    *,
    scratches: float = 0.5,
    dust: float = 0.5,
    grain: float = 0.5,
    fade: float = 0.5,
    flicker: float = 0.5,
) -> list[np.ndarray]:
    """Hook: old-film damage (scratches, dust, grain, fading, flicker), each strength 0..1; filled by Pik-Fix."""
    raise NotImplementedError(
        "old_film_damage is a hook without a body yet: the Pik-Fix engine fills it in streamfuse/data/degrade.py"
    )


@register_degradation("nir")
def nir_simulation(
    frames: list[np.ndarray],
    rng: np.random.Generator,
    *,
    vegetation_gain: float = 1.0,
    blur_sigma: float = 0.0,
) -> list[np.ndarray]:
    """Simulated near-infrared grey frames (H×W uint8) from RGB frames: the synthetic NIR rig's spectral model
    (``streamfuse.sources.synthetic_nir``; a simulation, not real NIR) with sensor noise from ``rng``."""
    from dataclasses import replace

    from streamfuse.sources.synthetic_nir import NirParams, simulate_nir

    params = replace(NirParams(), vegetation_gain=vegetation_gain, blur_sigma=blur_sigma)
    return [simulate_nir(f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2), params, rng) for f in frames]
