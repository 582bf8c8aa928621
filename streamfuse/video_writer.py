"""Crash-safe H.264/HEVC recording with PyAV: pts from capture timestamps, fragmented MP4 or Matroska.

With ``mux_from`` (a transcode's mono file) the recording keeps that file's time base, start offset and frame
rate, so every frame keeps its exact presentation time (variable frame rate included), and its audio streams
are copied packet for packet, interleaved with the video as it is written.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamfuse.config.schema import OutputConfig
from streamfuse.errors import SourceError
from streamfuse.nvenc import nvenc_options, pick_encoder
from streamfuse.sources.video import VideoInfo, ns_to_pts, probe_video

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
AUDIO_LEAD_S = 0.5  # copied audio runs at most this far ahead of the video written so far


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
        self.source: VideoInfo | None = probe_video(cfg.mux_from) if cfg.mux_from else None
        self.audio_packets = 0
        self._audio_in = None  # the source opened for its audio packets
        self._audio_map: dict[int, av.stream.Stream] = {}  # source stream index -> output stream
        self._audio_iter = None
        self._audio_next = None  # a demuxed packet waiting for the video to catch up

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        options = FRAGMENTED_MP4 if suffix in (".mp4", ".mov") else MATROSKA
        if self.source is not None and "movflags" in options:
            # The moov waits for the first fragment, so it can carry the start offset (an edit list); with an
            # empty moov the muxer rebases the file to 0.
            options = {**options, "movflags": options["movflags"] + "+delay_moov"}
            # The edit lists that carry the start offsets count in the movie timescale (1/1000 s by default):
            # count in a clock every source stream's time base divides, so a start such as 125/2997 s stays exact.
            options["movie_timescale"] = str(self._movie_timescale())
        self._container = av.open(str(self.path), mode="w", options=options)
        codec = pick_encoder(self.cfg.codec)  # NVENC falls back to libx264, with a log line, when it cannot open
        rate = Fraction(self.fps_hint).limit_denominator(1001)
        time_base = TIME_BASE
        if self.source is not None:  # keep the source's clock and nominal rate
            time_base = self.source.time_base
            rate = self.source.rate or rate
            self.fps_hint = float(rate)
        stream = self._container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = max(1, round(self.fps_hint * self.cfg.keyframe_s))
        # No B-frames: pts stay exactly the capture timestamps (no reorder offset) and latency stays low.
        stream.codec_context.max_b_frames = 0
        stream.options = self._codec_options(codec)
        self._stream = stream
        if self.source is not None and self.source.audio:
            self._open_audio()
        log.info("recording %s (%dx%d, %s, crf %d)", self.path, width, height, codec, self.cfg.crf)

    def _movie_timescale(self) -> int:
        """The least common multiple of 1000 and the source's video and audio time base denominators (MP4 only)."""
        with av.open(str(self.source.path)) as container:
            dens = [self.source.time_base.denominator, 1000]
            dens += [Fraction(s.time_base).denominator for s in container.streams.audio if s.time_base]
        scale = math.lcm(*dens)
        return scale if scale < 2**31 else 1000

    def _open_audio(self) -> None:
        """Add one output stream per audio stream of the source, copied without re-encoding."""
        src = self.source.path
        self._audio_in = av.open(str(src))
        for in_stream in self._audio_in.streams.audio:
            try:
                out = self._container.add_stream_from_template(in_stream)
            except ValueError as exc:
                raise SourceError(
                    f"audio stream {in_stream.index} of {src} ({in_stream.codec_context.name}) cannot be copied "
                    f"into {self.path.suffix}: {exc}; record to .mkv instead"
                ) from None
            self._audio_map[in_stream.index] = out
        self._audio_iter = self._audio_in.demux(*self._audio_in.streams.audio)

    def _copy_audio(self, until_s: float | None) -> None:
        """Mux source audio packets up to ``until_s`` seconds of media time (None: all that is left)."""
        while self._audio_iter is not None:
            packet = self._audio_next
            if packet is None:
                try:
                    packet = next(self._audio_iter)
                except (StopIteration, av.error.FFmpegError):
                    self._audio_iter = None
                    break
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's flush packet
            ts = packet.dts if packet.dts is not None else packet.pts
            if until_s is not None and ts * packet.time_base > until_s:
                self._audio_next = packet
                return
            self._audio_next = None
            packet.stream = self._audio_map[packet.stream.index]
            self._container.mux(packet)
            self.audio_packets += 1

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
        """Encode one frame, pts kept strictly increasing: with ``mux_from``, the source's own pts (its first pts
        plus ``ts_ns`` in its time base); otherwise (ts - first ts) on the 90 kHz clock."""
        height, width = rgb.shape[:2]
        even = rgb[: height - height % 2, : width - width % 2]  # 4:2:0 needs even sizes
        if self._container is None:
            self._open(even.shape[1], even.shape[0])
            self._t0 = ts_ns
        time_base = self._stream.codec_context.time_base
        if self.source is not None:
            pts = (self.source.first_pts or 0) + ns_to_pts(ts_ns, time_base)
        else:
            pts = round((ts_ns - self._t0) * 90_000 / 1_000_000_000)
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1
        if self._audio_iter is not None:
            self._copy_audio(float(pts * time_base) + AUDIO_LEAD_S)

    def close(self) -> None:
        """Flush the encoder and finalize the container."""
        if self._container is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._copy_audio(None)
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        self._container.close()
        self._container = None
