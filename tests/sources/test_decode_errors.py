"""File sources never truncate silently: damage is an error naming file, frame and byte, or counted skips."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from avclips import write_clip
from conftest import moving_frames

from streamfuse.errors import SourceError
from streamfuse.sources.file import FileCamera
from streamfuse.sources.video import ns_to_pts, probe_video, pts_to_ns, read_video_rgb


def damaged_copy(src: Path, dst: Path, at: float = 0.5, length: int = 600) -> Path:
    """``src`` with ``length`` bytes inverted at fraction ``at`` of the file (inside the media data)."""
    data = bytearray(src.read_bytes())
    start = int(len(data) * at)
    for i in range(start, start + length):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """40 frames at 10 fps from t = 5 s, in an MP4 (its index records the frame count)."""
    return write_clip(tmp_path / "clip.mp4", moving_frames(40, 120, 160), fps=10, start_s=5.0, audio=False)


def test_intact_file_gives_every_frame_with_rebased_file_timestamps(clip: Path) -> None:
    frames = list(FileCamera(clip, "mono").frames())
    assert len(frames) == 40
    assert [f.ts_ns for f in frames] == [i * 100_000_000 for i in range(40)]  # 10 fps, first frame at 0
    info = probe_video(clip)
    assert (info.width, info.height, info.frames, info.rate) == (160, 120, 40, 10)
    assert info.start_s == pytest.approx(5.0)  # the offset the writer puts back


def test_damaged_packet_fails_with_file_frame_and_byte(tmp_path: Path, clip: Path) -> None:
    bad = damaged_copy(clip, tmp_path / "bad.mp4")
    with pytest.raises(SourceError) as err:
        list(FileCamera(bad, "mono").frames())
    message = str(err.value)
    assert "bad.mp4" in message and "at frame " in message and "(byte " in message
    index = int(message.split("at frame ")[1].split()[0])
    assert 0 < index < 40


def test_skip_counts_the_damaged_frames_and_keeps_the_rest(tmp_path: Path, clip: Path) -> None:
    bad = damaged_copy(clip, tmp_path / "bad.mp4")
    cam = FileCamera(bad, "mono", on_corrupt="skip")
    frames = list(cam.frames())
    assert cam.counts["corrupt_frames"] >= 1
    assert len(frames) + cam.counts["corrupt_frames"] == 40  # every frame is either delivered or counted
    assert all(b.ts_ns > a.ts_ns for a, b in zip(frames, frames[1:], strict=False))


def test_index_less_file_that_loses_sync_is_an_error(tmp_path: Path) -> None:
    """Matroska has no frame count: a demuxer that loses sync just stops; the unread data gives it away."""
    src = write_clip(tmp_path / "clip.mkv", moving_frames(40, 120, 160), fps=10, audio=False)
    bad = damaged_copy(src, tmp_path / "bad.mkv")
    with pytest.raises(SourceError, match=r"bad.mkv: the media data stops at byte \d+ of \d+ at frame \d+"):
        list(read_video_rgb(bad))
    assert sum(1 for _ in read_video_rgb(src)) == 40


def test_truncated_file_is_an_error_not_a_short_video(tmp_path: Path) -> None:
    src = write_clip(tmp_path / "full.mp4", moving_frames(30), fps=10, start_s=0.0, audio=False)
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(SourceError, match="cut.mp4"):
        list(read_video_rgb(cut))


@pytest.mark.parametrize("content,message", [(b"", "is empty"), (b"\0garbage" * 300, "cannot (open|decode) video")])
def test_empty_and_garbage_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        probe_video(path)


def test_image_and_image_folder_sources(tmp_path: Path) -> None:
    frames = moving_frames(3, 60, 80)
    folder = tmp_path / "refs"
    folder.mkdir()
    for i, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    seq = list(FileCamera(folder, "color", fps=10).frames())
    assert [f.ts_ns for f in seq] == [0, 100_000_000, 200_000_000]
    assert np.array_equal(seq[2].image, frames[2])
    single = list(FileCamera(folder / "001.png", "color").frames())
    assert len(single) == 1 and single[0].ts_ns == 0 and np.array_equal(single[0].image, frames[1])


@pytest.mark.parametrize("tb", [Fraction(1, 10), Fraction(1, 10240), Fraction(1001, 30000), Fraction(1, 90000)])
def test_pts_survive_the_nanosecond_clock_exactly(tb: Fraction) -> None:
    for pts in (0, 1, 7, 12345, 10**7 + 3):
        assert ns_to_pts(pts_to_ns(pts, tb), tb) == pts
