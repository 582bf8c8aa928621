"""Stereo rectification of one camera's frames with remap tables precomputed from a calibration YAML.

The capture node builds one ``Rectifier`` per calibrated camera (``Rectifier.load(path, "left"|"right")``) and
calls ``apply`` per frame; ``bench_rectify`` measures that per-frame cost for ``streamfuse bench``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.errors import ConfigError

CAMERAS = ("left", "right")


class Rectifier:
    """Undistorts and rectifies one camera's frames (uint8 gray or RGB) with precomputed remap tables."""

    def __init__(
        self,
        K: np.ndarray,
        dist: np.ndarray,
        R: np.ndarray,
        P: np.ndarray,
        image_size: tuple[int, int],
        rectified_size: tuple[int, int],
        source: str = "<memory>",
    ) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.output_size = (int(rectified_size[0]), int(rectified_size[1]))
        self.source = source
        self._map1, self._map2 = cv2.initUndistortRectifyMap(
            np.asarray(K, np.float64),
            np.asarray(dist, np.float64),
            np.asarray(R, np.float64),
            np.asarray(P, np.float64)[:3, :3],
            self.output_size,
            cv2.CV_16SC2,
        )

    @classmethod
    def load(cls, path: str | Path, camera: str) -> Rectifier:
        """Build the rectifier of ``camera`` ("left" or "right") from a ``streamfuse calibrate`` YAML.

        Raises:
            ConfigError: the file is missing, is not a calibration file, or lacks a field; the message names it.
        """
        if camera not in CAMERAS:
            raise ConfigError(f"calibration camera must be 'left' or 'right', got {camera!r}")
        doc = load_calibration(path)
        return cls(**_camera_fields(doc, camera, str(path)), source=str(path))

    @classmethod
    def from_camera(cls, cam: Any, camera: str, source: str) -> Rectifier:
        """Build from an in-memory ``CameraCalibration`` (used by the calibrate preview)."""
        return cls(cam.K, cam.dist, cam.R, cam.P, cam.image_size, cam.rectified_size, source=source)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Rectify one frame (H×W or H×W×C uint8, the calibrated size); returns the rectified frame."""
        h, w = frame.shape[:2]
        if (w, h) != self.image_size:
            raise ConfigError(
                f"frame is {w}x{h} but calibration {self.source} was made at "
                f"{self.image_size[0]}x{self.image_size[1]}; recalibrate at this resolution or fix the camera size"
            )
        return cv2.remap(frame, self._map1, self._map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def load_calibration(path: str | Path) -> dict:
    """Read and sanity-check a calibration YAML; raises ConfigError naming the file and the problem."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"calibration file not found: {p}; create it with `streamfuse calibrate`")
    try:
        doc = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"calibration file {p} is not valid YAML ({exc}); re-run `streamfuse calibrate`") from exc
    if not isinstance(doc, dict) or "streamfuse_calibration" not in doc:
        raise ConfigError(f"{p} is not a streamfuse calibration file (no 'streamfuse_calibration' key)")
    for cam in CAMERAS:
        _camera_fields(doc, cam, str(p))
    return doc


def _camera_fields(doc: dict, camera: str, source: str) -> dict:
    section = doc.get(camera)
    if not isinstance(section, dict):
        raise ConfigError(f"calibration file {source} has no '{camera}' section")
    shapes = {"K": (3, 3), "R_rect": (3, 3), "P_rect": (3, 4), "image_size": (2,), "rectified_size": (2,)}
    out = {}
    for key, shape in shapes.items():
        try:
            arr = np.asarray(section[key], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"calibration file {source}: {camera}.{key} is missing or not numeric") from None
        if arr.shape != shape:
            raise ConfigError(f"calibration file {source}: {camera}.{key} has shape {arr.shape}, expected {shape}")
        out[key] = arr
    try:
        dist = np.asarray(section.get("dist", []), dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ConfigError(f"calibration file {source}: {camera}.dist is not numeric") from None
    if dist.size not in (0, 4, 5, 8, 12, 14):
        raise ConfigError(f"calibration file {source}: {camera}.dist has {dist.size} coefficients")
    if min(out["image_size"]) < 1 or min(out["rectified_size"]) < 1:
        raise ConfigError(f"calibration file {source}: {camera} image sizes must be positive")
    return {
        "K": out["K"],
        "dist": dist if dist.size else np.zeros(5),
        "R": out["R_rect"],
        "P": out["P_rect"],
        "image_size": tuple(int(v) for v in out["image_size"]),
        "rectified_size": tuple(int(v) for v in out["rectified_size"]),
    }


def bench_rectify(rectifier: Rectifier, frames: Iterable[np.ndarray], repeat: int = 1) -> float:
    """Mean milliseconds per ``apply`` over ``frames`` (each rectified ``repeat`` times); for ``streamfuse bench``."""
    frames = list(frames)
    if not frames:
        raise ValueError("bench_rectify needs at least one frame")
    rectifier.apply(frames[0])  # warm caches
    t0 = time.perf_counter()
    for _ in range(repeat):
        for f in frames:
            rectifier.apply(f)
    return (time.perf_counter() - t0) * 1000.0 / (repeat * len(frames))
