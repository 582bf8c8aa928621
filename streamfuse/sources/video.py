"""Colour video and image-folder readers (PyAV), shared by the file source and the synthetic rig."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from streamfuse.errors import SourceError

log = logging.getLogger("streamfuse.sources")

NS = 1_000_000_000
UNREAD_SLACK = 4096  # bytes after the last packet that an index-less file may hold (cues, tags)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass
class VideoInfo:
    """What a video file's container says about its first video stream (read without decoding it all)."""

    path: Path
    width: int
    height: int
    pix_fmt: str | None
    codec: str
    time_base: Fraction
    rate: Fraction | None
    """Container frame rate (average); None when the file does not say."""
    frames: int
    """Frame count from the container index; 0 when the container does not record it."""
    first_pts: int | None
    """pts of the first decoded frame, in ``time_base``; its time is the file's start offset."""
    audio: int
    """Number of audio streams."""
    first: np.ndarray | None = field(default=None, repr=False)
    """The first frame, RGB."""

    @property
    def start_s(self) -> float:
        return float((self.first_pts or 0) * self.time_base)

    def estimated_frames(self, duration_s: float | None) -> int | None:
        """The frame count, from the index or else from the duration and rate."""
        if self.frames:
            return self.frames
        if duration_s and self.rate:
            return round(duration_s * float(self.rate))
        return None


def _open(p: Path) -> av.container.InputContainer:
    if not p.is_file():
        raise SourceError(f"video file not found: {p}")
    if p.stat().st_size == 0:
        raise SourceError(f"video file {p} is empty (0 bytes)")
    try:
        return av.open(str(p))
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open video {p}: {exc}; is it a video file PyAV/FFmpeg can read?") from None


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video file and decode its first frame: size, pixel format, timing, audio streams.

    Raises SourceError naming the file when it is missing, empty, not a video, or has no decodable first frame.
    """
    p = Path(path)
    container = _open(p)
    try:
        if not container.streams.video:
            raise SourceError(f"{p} has no video stream")
        stream = container.streams.video[0]
        first = None
        try:
            for frame in container.decode(stream):
                first = frame
                break
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot decode video {p}: {exc}; the file is corrupt") from None
        if first is None:
            raise SourceError(f"video {p} contains no decodable frames; the file is truncated or corrupt")
        return VideoInfo(
            path=p,
            width=first.width,
            height=first.height,
            pix_fmt=first.format.name if first.format else None,
            codec=stream.codec_context.name,
            time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 90_000),
            rate=Fraction(stream.average_rate) if stream.average_rate else None,
            frames=int(stream.frames or 0),
            first_pts=first.dts if pts_in_decode_order(p) else first.pts,
            audio=len(container.streams.audio),
            first=first.to_ndarray(format="rgb24"),
        )
    finally:
        container.close()


def pts_to_ns(pts: int, time_base: Fraction) -> int:
    """A pts in ``time_base`` as integer nanoseconds (exact to the nanosecond)."""
    return round(pts * time_base * NS)


def ns_to_pts(ts_ns: int, time_base: Fraction) -> int:
    """Integer nanoseconds back to a pts in ``time_base``; inverts :func:`pts_to_ns` exactly."""
    return round(Fraction(ts_ns, NS) / time_base)


REORDER_PROBE_FRAMES = 32  # frames decoded up front to tell presentation timestamps from decode-order ones


def pts_in_decode_order(path: str | Path) -> bool:
    """True when the file's frame pts come in decode order (AVI with packed B-frames: 1, 2, 3, 5, 4, ...).

    Such a file has no presentation timestamps; its frames are shown in output order at the packets' dts, so those
    are its timing (FFmpeg's best-effort timestamp does the same).
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        last = None
        try:
            for frame in itertools.islice(container.decode(stream), REORDER_PROBE_FRAMES):
                if frame.pts is None:
                    continue
                if last is not None and frame.pts <= last:
                    return frame.dts is not None
                last = frame.pts
        except av.error.FFmpegError:
            return False  # damage is reported by the strict reader
    return False


def read_video_rgb(
    path: str | Path, on_corrupt: str = "fail", skipped: Counter | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a video file to (ts_ns, RGB uint8 frame) with PyAV, in presentation order.

    Decoding is strict: FFmpeg's error concealment is off, so a damaged packet is an error rather than a
    silently dropped or smeared frame. ``on_corrupt="fail"`` raises a SourceError naming the file, the frame
    index and the byte position; ``"skip"`` drops the bad frame, counts it in ``skipped["corrupt_frames"]``
    and goes on. A file that ends before the frame count its index promises is treated the same way.
    """
    if on_corrupt not in ("fail", "skip"):
        raise ValueError(f"on_corrupt must be 'fail' or 'skip', got {on_corrupt!r}")
    p = Path(path)
    skipped = skipped if skipped is not None else Counter()
    container = _open(p)
    try:
        if not container.streams.video:
            raise SourceError(f"{p} has no video stream")
        stream = container.streams.video[0]
        # One decoding thread: frame threads report an error packets late, and slice threads conceal a damaged
        # slice instead of failing on it (measured: 2000 flipped bytes in an H.264 MP4 decoded "cleanly").
        stream.thread_type = "NONE"
        stream.codec_context.options = {"err_detect": "explode"}
        tb = Fraction(stream.time_base) if stream.time_base else None
        decode_order = pts_in_decode_order(p)
        fps = float(stream.average_rate or 30)
        count = 0  # frames yielded
        bad = 0  # frames lost to damage (skipped)
        last_pos = 0  # byte position of the current video packet
        data_end = 0  # end of the furthest packet of any stream

        def damaged(what: str, frames: int = 1) -> None:
            nonlocal bad
            message = f"{p}: {what} at frame {count + bad} (byte {last_pos}); the file is corrupt"
            if on_corrupt == "fail":
                raise SourceError(message + "; --on-corrupt skip drops bad frames instead")
            log.warning("%s; skipped %s", message, f"{frames} frame(s)" if frames else "the rest of the file")
            bad += frames
            skipped["corrupt_frames" if frames else "unreadable_tails"] += max(frames, 1)

        packets = container.demux()  # every stream, so data_end sees audio that runs past the video
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                damaged(f"unreadable data ({exc})")
                break
            if packet.pos is not None and packet.pos >= 0:
                data_end = max(data_end, packet.pos + packet.size)
            if packet.stream.index != stream.index:
                continue
            if packet.pos is not None and packet.pos >= 0:
                last_pos = packet.pos
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                damaged(f"decode error ({exc})")
                continue
            for frame in frames:
                stamp = frame.dts if decode_order else frame.pts
                known = stamp is not None and tb is not None
                ts = pts_to_ns(stamp, tb) if known else int(count * 1e9 / fps)
                count += 1
                yield ts, frame.to_ndarray(format="rgb24")
        if count == 0 and bad == 0:
            raise SourceError(f"video {p} contains no decodable frames; the file is truncated or corrupt")
        missing = (stream.frames or 0) - count - bad
        size = p.stat().st_size
        if missing > 0:
            # The index promised more frames than decoded: a cut file or packets the decoder swallowed.
            damaged(f"{missing} of {stream.frames} indexed frames missing", missing)
        elif not stream.frames and size - data_end > max(UNREAD_SLACK, size // 100):
            # No frame index (Matroska, streams): a demuxer that lost sync stops early without an error.
            damaged(f"the media data stops at byte {data_end} of {size}", 0)
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


def read_image_rgb(path: str | Path) -> Iterator[tuple[int, np.ndarray]]:
    """A single image as a one-frame video at time 0 (the single-reference mode of a transcode)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"cannot decode image {path}: not an image format OpenCV reads, or the file is corrupt")
    yield 0, cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def is_image_file(path: str | Path) -> bool:
    """A still image (by suffix), as opposed to a video file."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_rgb_frames(
    path: str | Path, fps: float = 30.0, on_corrupt: str = "fail", skipped: Counter | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Frames of a video file, an image folder (at ``fps``) or a single image."""
    p = Path(path)
    if p.is_dir():
        return read_folder_rgb(p, fps)
    if is_image_file(p):
        return read_image_rgb(p)
    return read_video_rgb(p, on_corrupt, skipped)


def fit_frame(rgb: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize to ``size`` (W, H) or, without one, crop both sides down to multiples of 8."""
    if size is not None:
        if (rgb.shape[1], rgb.shape[0]) == size:
            return rgb
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[0] // 8 * 8, rgb.shape[1] // 8 * 8
    return rgb[:h, :w]
