"""Crash-safe H.264/HEVC recording with PyAV: pts from capture timestamps, fragmented MP4 or Matroska."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamfuse.config.schema import OutputConfig
from streamfuse.runtime.nvenc import nvenc_options, pick_encoder

log = logging.getLogger("streamfuse.encode")

TIME_BASE = Fraction(1, 90_000)  # the MPEG 90 kHz clock: integer pts, exact for common frame rates
FRAGMENT_MS = 250  # a fragment (MP4) or cluster (Matroska) is closed at least this often, and at every keyframe
# Fragmented MP4: the index is written per fragment, so a killed encoder leaves a playable file that lacks at most
# the open fragment. flush_packets hands every finished fragment to the OS at once instead of holding it in the
# 32 KiB I/O buffer. Fragments need not start on a keyframe: the file still decodes and seeks (to keyframes).
FRAGMENTED_MP4 = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": str(FRAGMENT_MS * 1000),
    "flush_packets": "1",
}
MATROSKA = {"cluster_time_limit": str(FRAGMENT_MS), "flush_packets": "1"}


class VideoWriter:
    """Writes RGB frames with timestamps to one file; the first frame fixes the size."""

    def __init__(self, cfg: OutputConfig, fps_hint: float, live: bool = False) -> None:
        self.cfg = cfg
        self.path = Path(cfg.path)
        self.fps_hint = fps_hint
        self.live = live
        self.frames = 0
        self._container = None
        self._stream = None
        self._t0: int | None = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        options = FRAGMENTED_MP4 if suffix in (".mp4", ".mov") else MATROSKA
        self._container = av.open(str(self.path), mode="w", options=options)
        codec = pick_encoder(self.cfg.codec)  # NVENC falls back to libx264, with a log line, when it cannot open
        rate = Fraction(self.fps_hint).limit_denominator(1001)
        stream = self._container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.codec_context.gop_size = max(1, round(self.fps_hint * self.cfg.keyframe_s))
        # No B-frames: pts stay exactly the capture timestamps (no reorder offset) and latency stays low.
        stream.codec_context.max_b_frames = 0
        stream.options = self._codec_options(codec)
        self._stream = stream
        log.info("recording %s (%dx%d, %s, crf %d)", self.path, width, height, codec, self.cfg.crf)

    def _codec_options(self, codec: str) -> dict[str, str]:
        """Encoder options: x264/x265 take crf/preset/keyint; NVENC gets the matching constant-quality settings."""
        if codec.endswith("_nvenc"):
            return nvenc_options(self.cfg.crf, self.cfg.preset, self.live)
        opts = {"crf": str(self.cfg.crf), "preset": self.cfg.preset}
        if codec.startswith("libx26"):
            keyint = max(1, round(self.fps_hint * self.cfg.keyframe_s))
            opts["x264-params" if codec == "libx264" else "x265-params"] = f"keyint={keyint}:min-keyint={keyint}"
            if self.live:
                opts["tune"] = "zerolatency"
        return opts

    def write(self, rgb: np.ndarray, ts_ns: int) -> None:
        """Encode one frame; pts = (ts - first ts) on the 90 kHz clock, kept strictly increasing."""
        height, width = rgb.shape[:2]
        even = rgb[: height - height % 2, : width - width % 2]  # 4:2:0 needs even sizes
        if self._container is None:
            self._open(even.shape[1], even.shape[0])
            self._t0 = ts_ns
        pts = round((ts_ns - self._t0) * 90_000 / 1_000_000_000)
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
        frame.pts = pts
        frame.time_base = TIME_BASE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finalize the container."""
        if self._container is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
