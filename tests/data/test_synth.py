"""streamfuse synth: benchmark exclusion, x264 sequences with motion, pairs cut like the video protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.cli import main
from streamfuse.color import luma
from streamfuse.data import synth


def _stills() -> list[tuple[str, np.ndarray]]:
    return [(f"scene{i}", textured_scene(160, 200, seed=i)) for i in range(4)]


@pytest.mark.parametrize(
    "name",
    [
        "vtest.avi",
        "Megamind.avi",
        "MEGAMIND_bugy.avi",
        "tree.avi",
        "aloeL.jpg",
        "aloeR.jpg",
        "rubberwhale1.png",
        "/a/b/rubberwhale2.png",
    ],
)
def test_benchmark_files_are_refused(name: str) -> None:
    assert synth.is_benchmark(name)
    with pytest.raises(synth.SynthError, match="refusing benchmark"):
        synth.file_sources([name])


def test_ordinary_stills_are_not_on_the_exclusion_list() -> None:
    assert not any(synth.is_benchmark(n) for n in ("fruits.jpg", "baboon.jpg", "graf1.png", "tree.png"))


def test_cli_synth_refuses_a_benchmark_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["synth", "--out", str(tmp_path / "d"), "--sequences", "1", "--source", "/x/vtest.avi"])
    assert rc == 2
    assert "refusing benchmark" in capsys.readouterr().err
    assert not (tmp_path / "d" / "manifest.json").exists()


def test_synthesize_writes_encoded_moving_sequences_and_a_manifest(tmp_path: Path) -> None:
    opt = synth.SynthOptions(
        size=(96, 64), frames=4, camera_speed=3.0, static_camera_prob=0.0, objects=(2, 2), blur_prob=0.0, crf=(20, 20)
    )
    manifest = synth.synthesize(tmp_path, 3, _stills(), opt, seed=1, val_fraction=0.34)
    saved = json.loads((tmp_path / "manifest.json").read_text())
    assert [s["split"] for s in saved["sequences"]] == ["val", "train", "train"]
    assert saved["exclusion_list"] == list(synth.BENCHMARK_EXCLUDE)
    assert synth.load_manifest(tmp_path).sequences == manifest.sequences
    frames = synth.decode_video(tmp_path / "seq_00001.mp4")
    assert len(frames) == 4 and frames[0].shape == (64, 96, 3)
    # the camera pans, so consecutive frames differ; the codec round trip keeps them close to a real image
    assert np.abs(frames[3].astype(int) - frames[0].astype(int)).mean() > 2.0
    assert frames[0].std() > 10


def test_validation_sequences_use_stills_never_seen_in_training(tmp_path: Path) -> None:
    # one still per split (dark and bright, so colour jitter cannot confuse them): a validation sequence
    # must be made of the held-aside still only
    stills = [("dark", np.full((160, 200, 3), 50, np.uint8)), ("bright", np.full((160, 200, 3), 200, np.uint8))]
    opt = synth.SynthOptions(size=(64, 48), frames=2, blur_prob=0.0, crf=(10, 10), objects=(1, 1))
    manifest = synth.synthesize(tmp_path, 4, stills, opt, seed=3, val_fraction=0.5)
    levels: dict[str, set[int]] = {}
    for seq in manifest.sequences:
        mean = float(synth.decode_video(tmp_path / seq["file"])[0].mean())
        levels.setdefault(seq["split"], set()).add(int(mean > 125))
    assert len(levels["val"]) == 1 and levels["val"].isdisjoint(levels["train"])


def test_sequence_pairs_follow_the_video_protocol() -> None:
    frames = [textured_scene(67, 101, seed=i) for i in range(8)]
    pairs = list(synth.sequence_pairs(frames, scales=[4, 8], gaps=[1, 6]))
    assert [(p.scale, p.gap) for p in pairs] == [(4, 1), (4, 6), (8, 1), (8, 6)]
    p = pairs[1]
    assert p.truth.shape == (64, 96, 3)  # cropped to multiples of 8
    assert p.ref.shape == (16, 24, 3)
    np.testing.assert_array_equal(p.mono, luma(frames[6][:64, :96]))
    assert pairs[3].ref.shape == (8, 12, 3)


def test_x264_round_trip_subsamples_chroma() -> None:
    # a one-pixel colour checkerboard cannot survive 4:2:0, its luma largely does
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[::2, ::2] = (255, 0, 0)
    rgb[1::2, 1::2] = (255, 0, 0)
    rgb[::2, 1::2] = (0, 0, 255)
    rgb[1::2, ::2] = (0, 0, 255)
    out = synth.decode_video(synth.encode_x264([rgb] * 2, crf=0))[0]
    from streamfuse.color import rgb_to_ycbcr

    cr_in = rgb_to_ycbcr(rgb)[..., 2].astype(float)
    cr_out = rgb_to_ycbcr(out)[..., 2].astype(float)
    assert cr_in.std() > 50 and cr_out.std() < 0.5 * cr_in.std()
