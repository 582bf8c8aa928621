"""Recorded video files as a camera (PyAV); timestamps come from the file."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

from streamfuse.color import luma
from streamfuse.errors import SourceError
from streamfuse.sources.base import CapturedFrame, Source
from streamfuse.sources.video import fit_frame, read_video_rgb


class FileCamera(Source):
    """Frames of a video file, as luma for a mono/NIR camera or RGB for a colour camera."""

    def __init__(self, path: str | Path, role: str, size: tuple[int, int] | None = None, limit: int | None = None):
        if not Path(path).is_file():
            raise SourceError(f"video file not found: {path}")
        self.path = Path(path)
        self.role = role
        self.size = size
        self.limit = limit

    def frames(self) -> Iterator[CapturedFrame]:
        first = None
        for ts, rgb in itertools.islice(read_video_rgb(self.path), self.limit):
            first = ts if first is None else first
            rgb = fit_frame(rgb, self.size) if self.size else rgb
            image = rgb if self.role == "color" else luma(rgb)
            yield CapturedFrame(ts - first, image)
