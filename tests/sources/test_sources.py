"""Sources: the synthetic rig's camera model, files, and clear errors for absent cameras and bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import moving_frames

from streamfuse.color import luma
from streamfuse.config.schema import NoiseConfig, ParallaxConfig, SyntheticConfig
from streamfuse.errors import SourceError
from streamfuse.sources.camera import RtspCamera, V4L2Camera
from streamfuse.sources.file import FileCamera
from streamfuse.sources.synthetic import SyntheticCamera


def synth(video: Path, **kw) -> SyntheticConfig:
    return SyntheticConfig(video=str(video), noise=NoiseConfig(0.0, 0.0), **kw)


def test_colour_camera_at_a_quarter_of_the_mono_rate(small_video: Path) -> None:
    cfg = synth(small_video, color_fps_ratio=0.25, scale=4)
    mono = list(SyntheticCamera(cfg, "mono", 30, limit=16).frames())
    colour = list(SyntheticCamera(cfg, "color", 30, limit=16).frames())
    assert len(mono) == 16 and len(colour) == 4
    assert [c.ts_ns for c in colour] == [round(j * 4e9 / 30) for j in range(4)]
    assert mono[0].image.shape == (120, 160) and colour[0].image.shape == (30, 40, 3)
    assert np.array_equal(mono[5].image, luma(mono[5].truth))  # noise-free mono is the truth's luma
    area = cv2.resize(mono[4].truth, (40, 30), interpolation=cv2.INTER_AREA)
    assert np.abs(colour[1].image.astype(int) - area).mean() < 1.0  # colour frame 1 shows mono frame 4's scene


def test_time_offset_and_parallax(small_video: Path) -> None:
    cfg = synth(small_video, scale=1, time_offset_s=2 / 30, parallax=ParallaxConfig(shift=(5.0, 0.0)))
    mono = list(SyntheticCamera(cfg, "mono", 30, limit=10).frames())
    colour = list(SyntheticCamera(cfg, "color", 30, limit=10).frames())
    later = mono[3 + 2].truth  # the colour camera sees the scene 2 frames later...
    assert np.abs(colour[3].image[:, 10:150].astype(int) - later[:, 5:145]).mean() < 1.0  # ...shifted by 5 px


def test_noise_model_std_follows_sqrt_intensity(small_video: Path) -> None:
    cfg = SyntheticConfig(video=str(small_video), noise=NoiseConfig(mono=0.05, color=0.0))
    frame = next(SyntheticCamera(cfg, "mono", 30, limit=1).frames())
    clean = luma(frame.truth).astype(float)
    err = frame.image.astype(float) - clean
    bright = (clean > 150) & (clean < 250)
    expected = 0.05 * np.sqrt(clean[bright] / 255) * 255
    assert np.std(err[bright]) == pytest.approx(np.sqrt(np.mean(expected**2)), rel=0.15)


def test_file_camera_gives_luma_or_rgb_with_file_timestamps(small_video: Path) -> None:
    mono = list(FileCamera(small_video, "mono", limit=5).frames())
    colour = list(FileCamera(small_video, "color", size=(80, 60), limit=5).frames())
    assert mono[0].image.ndim == 2 and colour[0].image.shape == (60, 80, 3)
    assert [f.ts_ns for f in mono] == [round(i * 1e9 / 30) for i in range(5)]


def test_absent_v4l2_device_is_named() -> None:
    with pytest.raises(SourceError, match=r"camera '/dev/video97' could not be opened"):
        V4L2Camera("/dev/video97", "mono")


def test_absent_rtsp_stream_is_named() -> None:
    with pytest.raises(SourceError, match=r"stream 'rtsp://127.0.0.1:9/none' could not be opened"):
        RtspCamera("rtsp://127.0.0.1:9/none", "color", timeout_s=2)


def test_missing_corrupt_and_truncated_files(tmp_path: Path, small_video: Path) -> None:
    with pytest.raises(SourceError, match="video file not found"):
        FileCamera(tmp_path / "none.mp4", "mono")
    (tmp_path / "junk.mp4").write_bytes(b"\0junk" * 1000)
    with pytest.raises(SourceError, match="cannot (open|decode) video .*junk.mp4"):
        list(FileCamera(tmp_path / "junk.mp4", "mono").frames())
    data = small_video.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="cut.mp4"):
        list(FileCamera(tmp_path / "cut.mp4", "mono").frames())


def test_parallax_drift_goes_out_and_back(small_video: Path) -> None:
    par = ParallaxConfig(shift=(0.0, 0.0), drift=(30.0, 0.0), drift_period_s=0.4)
    cam = SyntheticCamera(synth(small_video, scale=1, parallax=par), "color", 30)
    truth = moving_frames(1, 120, 160)[0]
    shifted = [cam.colour_view(truth, t) for t in (0.0, 0.2, 0.4)]  # offsets 0, 6 px, 0
    assert np.abs(shifted[0].astype(int) - truth).mean() < 1.0
    assert np.abs(shifted[1][:, 10:150].astype(int) - truth[:, 4:144]).mean() < 1.0
    assert np.abs(shifted[2].astype(int) - truth).mean() < 1.0
