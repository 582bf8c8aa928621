"""Recorded media as a camera (PyAV): a video file, a folder of images, or one still image; timestamps from the file."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from streamfuse.color import luma
from streamfuse.errors import SourceError
from streamfuse.sources.base import CapturedFrame, Source
from streamfuse.sources.video import fit_frame, read_rgb_frames


class FileCamera(Source):
    """Frames of a video file (or image folder, or single image), as luma for a mono/NIR camera or RGB for colour.

    Timestamps are the file's own, rebased so that the first frame is at 0 (the writer adds the start offset back
    when it copies the mono file's timing). An image folder plays at ``fps``; a single image is one frame at 0.
    ``on_corrupt`` is ``fail`` (a damaged frame ends the source with an error naming the file, frame and byte) or
    ``skip`` (damaged frames are dropped and counted in ``counts["corrupt_frames"]``).
    """

    def __init__(
        self,
        path: str | Path,
        role: str,
        size: tuple[int, int] | None = None,
        limit: int | None = None,
        fps: float = 30.0,
        on_corrupt: str = "fail",
    ):
        if not Path(path).exists():
            raise SourceError(f"video file not found: {path}")
        self.path = Path(path)
        self.role = role
        self.size = size
        self.limit = limit
        self.fps = fps
        self.on_corrupt = on_corrupt
        self.counts: Counter = Counter()

    def frames(self) -> Iterator[CapturedFrame]:
        first = None
        frames = read_rgb_frames(self.path, self.fps, self.on_corrupt, self.counts)
        for ts, rgb in itertools.islice(frames, self.limit):
            first = ts if first is None else first
            rgb = fit_frame(rgb, self.size) if self.size else rgb
            image = rgb if self.role == "color" else luma(rgb)
            yield CapturedFrame(ts - first, image)

    def health(self) -> dict[str, int]:
        return dict(self.counts)
