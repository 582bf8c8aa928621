"""Colour video and image-folder readers (PyAV), shared by the file source and the synthetic rig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from streamfuse.errors import SourceError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def read_video_rgb(path: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video file to (ts_ns, RGB uint8 frame) with PyAV; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"video file not found: {p}")
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open video {p}: {exc}; is it a video file PyAV/FFmpeg can read?") from None
    try:
        if not container.streams.video:
            raise SourceError(f"{p} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        fps = float(stream.average_rate or 30)
        count = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and tb is not None:
                    ts = round(frame.pts * tb * 1_000_000_000)
                else:
                    ts = int(count * 1e9 / fps)
                count += 1
                yield ts, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            if count == 0:
                raise SourceError(f"cannot decode video {p}: {exc}; the file is corrupt") from None
            # A truncated tail: keep what decoded, as players do.
        if count == 0:
            raise SourceError(f"video {p} contains no decodable frames")
    finally:
        container.close()


def read_folder_rgb(path: str | Path, fps: float) -> Iterator[tuple[int, np.ndarray]]:
    """Read a folder of images (sorted by name) as a video at ``fps``."""
    files = sorted(f for f in Path(path).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SourceError(f"image folder {path} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    for i, f in enumerate(files):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise SourceError(f"cannot decode image {f}")
        yield int(i * 1e9 / fps), cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_rgb_frames(path: str | Path, fps: float = 30.0) -> Iterator[tuple[int, np.ndarray]]:
    """Frames of a video file or an image folder."""
    p = Path(path)
    return read_folder_rgb(p, fps) if p.is_dir() else read_video_rgb(p)


def fit_frame(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize to ``size`` (W, H) or, without one, crop both sides down to multiples of 8."""
    if size is not None:
        if (rgb.shape[1], rgb.shape[0]) == size:
            return rgb
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[0] // 8 * 8, rgb.shape[1] // 8 * 8
    return rgb[:h, :w]
