"""Small media files for transcode tests: H.264 video with exact pts, a start offset, and an AAC track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 16_000


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: int = 10,
    start_s: float = 5.0,
    audio: bool = True,
    times_ms: list[int] | None = None,
) -> Path:
    """Encode RGB frames to H.264 starting at ``start_s`` (or at ``times_ms``, a variable frame rate), with a sine
    AAC track covering the same time span when ``audio``."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps))
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.options = {"crf": "16", "preset": "ultrafast"}
        tb = Fraction(1, 1000) if times_ms else Fraction(1, fps)
        video.codec_context.time_base = tb
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "mono"
        starts = [round(start_s * 1000) + t for t in times_ms] if times_ms else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = starts[i] if starts else round(start_s * fps) + i
            frame.time_base = tb
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            span_s = (times_ms[-1] / 1000 + 0.1) if times_ms else len(frames) / fps
            samples = round(span_s * AUDIO_RATE)
            t = np.arange(samples) / AUDIO_RATE
            wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            chunk = 1024
            for offset in range(0, samples, chunk):
                piece = wave[offset : offset + chunk][None, :]
                frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
                frame.sample_rate = AUDIO_RATE
                frame.pts = round(start_s * AUDIO_RATE) + offset
                frame.time_base = Fraction(1, AUDIO_RATE)
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def stream_times(path: Path, kind: str = "video") -> list[Fraction]:
    """Presentation time of every packet of the first ``kind`` stream, as exact fractions of a second, sorted."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
        times = [p.pts * p.time_base for p in container.demux(stream) if p.pts is not None]
    return sorted(times)


def audio_duration_s(path: Path) -> float:
    """Seconds of audio decoded from the first audio stream (samples / rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate
