"""Encode -> decode round trips: frame count, size, timestamps, and crash safety of the container."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import moving_frames

from streamfuse.config.schema import OutputConfig
from streamfuse.video_writer import VideoWriter

NS = 1_000_000_000


def decode(path: Path, tolerate_tail: bool = False) -> tuple[list[np.ndarray], list[float]]:
    """Decode every frame; with tolerate_tail, stop at a damaged tail as a player does."""
    frames = []
    with av.open(str(path)) as container:
        try:
            for packet in container.demux(video=0):
                frames.extend(packet.decode())
        except av.error.InvalidDataError:
            if not tolerate_tail:
                raise
    return [f.to_ndarray(format="rgb24") for f in frames], [float(f.pts * f.time_base) for f in frames]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_round_trip_keeps_frames_size_and_timestamps(tmp_path: Path, suffix: str) -> None:
    frames = moving_frames(20, 120, 160)
    ts = [int(i * NS / 25) + 5 * NS for i in range(20)]  # 25 fps starting at t = 5 s
    writer = VideoWriter(OutputConfig(path=str(tmp_path / f"v{suffix}"), crf=10), fps_hint=25)
    for frame, t in zip(frames, ts, strict=True):
        writer.write(frame, t)
    writer.close()
    decoded, times = decode(tmp_path / f"v{suffix}")
    assert len(decoded) == 20 and decoded[0].shape == (120, 160, 3)
    assert times == pytest.approx([i / 25 for i in range(20)], abs=1e-3)  # pts from capture timestamps
    psnr = 10 * np.log10(255**2 / np.mean((decoded[10].astype(float) - frames[10]) ** 2))
    assert psnr > 28


def test_variable_frame_timing_is_preserved(tmp_path: Path) -> None:
    gaps_ms = [0, 33, 66, 200, 233, 300]  # a dropped stretch keeps its real timing
    writer = VideoWriter(OutputConfig(path=str(tmp_path / "v.mp4")), fps_hint=30)
    for frame, ms in zip(moving_frames(6), gaps_ms, strict=True):
        writer.write(frame, ms * 1_000_000)
    writer.close()
    _, times = decode(tmp_path / "v.mp4")
    assert times == pytest.approx([ms / 1000 for ms in gaps_ms], abs=1e-3)


def test_odd_sizes_are_cropped_to_even(tmp_path: Path) -> None:
    writer = VideoWriter(OutputConfig(path=str(tmp_path / "v.mp4")), fps_hint=30)
    writer.write(np.zeros((121, 161, 3), np.uint8), 0)
    writer.close()
    decoded, _ = decode(tmp_path / "v.mp4")
    assert decoded[0].shape == (120, 160, 3)


KILLED_WRITER = """
import os, sys, numpy as np
from streamfuse.config.schema import OutputConfig
from streamfuse.video_writer import VideoWriter
w = VideoWriter(OutputConfig(path=sys.argv[1], keyframe_s=0.5), fps_hint=30)
base = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
for i in range(90):
    w.write(np.roll(base, 2 * i, axis=1), int(i * 1e9 / 30))
os.kill(os.getpid(), 9)
"""


def test_killed_writer_leaves_a_playable_fragmented_mp4(tmp_path: Path) -> None:
    out = tmp_path / "killed.mp4"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(out)], timeout=120)
    assert proc.returncode == -9
    decoded, times = decode(out, tolerate_tail=True)
    # 90 frames were handed over (3 s); fragments close at each 0.5 s keyframe: at most ~0.5 s + encoder delay lost
    assert len(decoded) >= 70 and times[-1] >= 90 / 30 - 0.6


def test_nvenc_gets_constant_quality_options_not_x264_ones() -> None:
    writer = VideoWriter(OutputConfig(path="x.mp4", codec="h264_nvenc", crf=21, preset="veryfast"), fps_hint=30)
    opts = writer._codec_options("h264_nvenc")
    assert opts["cq"] == "21" and "crf" not in opts and not opts["preset"].startswith("very")
    assert writer._codec_options("libx264")["crf"] == "21"


@pytest.mark.parametrize("source_suffix,out_suffix", [(".mp4", ".mp4"), (".mp4", ".mkv"), (".mkv", ".mp4")])
@pytest.mark.parametrize("times_ms", [None, [0, 100, 150, 400, 500, 620, 700, 800]], ids=["cfr", "vfr"])
def test_mux_from_keeps_the_source_timing_and_copies_its_audio(
    tmp_path: Path, source_suffix: str, out_suffix: str, times_ms: list[int] | None
) -> None:
    from avclips import audio_duration_s, stream_times, write_clip

    from streamfuse.sources.file import FileCamera

    n = len(times_ms) if times_ms else 20
    src = write_clip(tmp_path / f"src{source_suffix}", moving_frames(n), fps=10, start_s=5.0, times_ms=times_ms)
    out = tmp_path / f"out{out_suffix}"
    writer = VideoWriter(OutputConfig(path=str(out), mux_from=str(src)), fps_hint=30)
    for frame in FileCamera(src, "color").frames():  # timestamps rebased to 0, as a capture node sends them
        writer.write(frame.image, frame.ts_ns)
    writer.close()
    assert stream_times(out) == stream_times(src)  # exact presentation times, start offset and VFR included
    assert stream_times(out)[0] == 5
    with av.open(str(out)) as container:
        if times_ms is None:
            assert container.streams.video[0].average_rate == 10  # the container's frame rate
        assert len(container.streams.audio) == 1 and container.streams.audio[0].codec_context.name == "aac"
    assert writer.audio_packets > 0
    assert stream_times(out, "audio")[0] == stream_times(src, "audio")[0]  # audio starts where it did: in sync
    assert audio_duration_s(out) == pytest.approx(audio_duration_s(src), abs=0.1)  # within one 10 fps frame
