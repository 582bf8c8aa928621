"""Shared test fixtures: small generated scenes and videos (tests never download anything)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest


def textured_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A colourful, smoothly textured RGB scene with edges (a stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(img, (x, y), int(rng.integers(width // 12, width // 5)), c, -1)
    return img


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Encode RGB frames to an H.264 file with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def moving_frames(n: int, height: int = 120, width: int = 160, speed: int = 2) -> list[np.ndarray]:
    """n frames of a scene panning ``speed`` px per frame."""
    big = textured_scene(height, width + n * speed, seed=3)
    return [np.ascontiguousarray(big[:, i * speed : i * speed + width]) for i in range(n)]


@pytest.fixture
def small_video(tmp_path: Path) -> Path:
    """A 24-frame 160x120 colour clip."""
    return write_video(tmp_path / "clip.mp4", moving_frames(24))
