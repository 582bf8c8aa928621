"""The evaluation protocols: clip selection (scene-cut rule), stereo noise, records, tables, images, CLI errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.cli import main
from streamfuse.data.degrade import sensor_noise
from streamfuse.errors import SourceError
from streamfuse.evaluation import RECORD_KEYS, Case, EvalConfig, data_dir, markdown_table, run_eval, summarize
from streamfuse.evaluation.images import side_by_side
from streamfuse.evaluation.report import results_document
from streamfuse.evaluation.stereo import stereo_case
from streamfuse.evaluation.video import clip_starts, load_clips, video_cases

OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"


def test_scene_cut_drops_only_the_clip_that_holds_it():
    diffs = np.full(34, 2.0)  # 35 frames -> candidate clips at 0, 7, 14, 21, 28
    diffs[9] = 31.0  # cut between frames 9 and 10: inside clip 7..13
    diffs[6] = 80.0  # between frame 6 (clip 0) and 7 (clip 7): no clip holds both frames
    diffs[20] = 30.0  # exactly 30 is not a cut (the rule is > 30)
    assert clip_starts(diffs, 35) == [0, 14, 21, 28]


def test_clip_selection_spreads_twenty_over_the_survivors():
    n_clips = 30
    starts = clip_starts(np.zeros(n_clips * 7 - 1), n_clips * 7)
    expected = [7 * int(i) for i in np.linspace(0, n_clips - 1, 20).round()]
    assert starts == expected and len(starts) == 20
    assert clip_starts(np.zeros(5), 6) == []  # too short for one clip


def _write_avi(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_cases_crop_select_and_pair_frames(tmp_path):
    a, b = textured_scene(50, 67, seed=1), textured_scene(50, 67, seed=2)
    frames = [np.roll(a, i, axis=1) for i in range(10)] + [np.roll(b, i, axis=1) for i in range(11)]
    path = tmp_path / "cut.avi"
    _write_avi(path, frames)  # 21 frames, a scene cut between frames 9 and 10 drops clip 7..13
    clips = load_clips(path)
    assert list(clips) == [0, 14]
    cases = list(video_cases(path, scales=(4,)))
    assert [(c.case, c.target) for c in cases][-2:] == [("clip0014", "near"), ("clip0014", "far")]
    near = cases[2]
    assert np.abs(near.truth.astype(int) - np.roll(b, 5, axis=1)[:48, :64]).mean() < 8  # frame 2 of clip 14
    assert near.truth.shape == (48, 64, 3) and near.mono.shape == (48, 64) and near.ref.shape == (12, 16, 3)
    assert np.array_equal(near.mono, cv2.cvtColor(near.truth, cv2.COLOR_RGB2GRAY))


def test_sensor_noise_statistics():
    rng = np.random.default_rng(0)
    img = np.full((400, 400), 128, np.uint8)
    noisy = sensor_noise(img, 0.03, rng).astype(np.float64)
    expected_std = 0.03 * np.sqrt(128 / 255) * 255  # a·√κ on the 0..1 scale, in 8-bit units
    assert noisy.mean() == pytest.approx(128, abs=0.1)
    assert noisy.std() == pytest.approx(expected_std, rel=0.03)
    dark = sensor_noise(np.full((400, 400), 32, np.uint8), 0.03, rng).astype(np.float64)
    assert dark.std() == pytest.approx(0.03 * np.sqrt(32 / 255) * 255, rel=0.05)  # noise grows with √κ


def test_stereo_case_noise_levels_and_determinism():
    left = np.full((64, 64, 3), 128, np.uint8)
    one = stereo_case("flat", left, left, 1, "Setup1")
    two = stereo_case("flat", left, left, 1, "Setup2")
    again = stereo_case("flat", left, left, 1, "Setup2")
    sigma = np.sqrt(128 / 255) * 255
    assert one.mono.std() == pytest.approx(0.01 * sigma, rel=0.15)
    assert one.ref.std() == pytest.approx(0.03 * sigma, rel=0.1)
    assert two.ref.std() == pytest.approx(0.07 * sigma, rel=0.1)
    assert np.array_equal(two.ref, again.ref) and np.array_equal(two.mono, again.mono)
    assert stereo_case("flat", left, left, 4, "Setup1").ref.shape == (16, 16, 3)


def _synthetic_cases() -> list[Case]:
    truth = textured_scene(64, 80, seed=3)
    mono = cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)
    ref = cv2.resize(truth, (20, 16), interpolation=cv2.INTER_AREA)
    return [Case("video", "synthetic", "clip0000", 4, target, mono, ref, truth) for target in ("near", "far")]


def test_record_and_document_schema_is_stable():
    records = run_eval(EvalConfig(engines=("naive",)), cases=_synthetic_cases())
    assert RECORD_KEYS == (
        "protocol",
        "dataset",
        "case",
        "scale",
        "target",
        "engine",
        "psnr_rgb",
        "psnr_cbcr",
        "ssim",
        "ms",
    )
    assert all(tuple(r) == RECORD_KEYS for r in records)
    assert records[0]["scale"] == 4 and isinstance(records[0]["scale"], int)
    doc = json.loads(json.dumps(results_document(records, "streamfuse eval", {})))
    assert {"schema", "command", "machine", "settings", "records", "summary"} <= set(doc)
    assert doc["schema"] == 1
    row = doc["summary"][0]
    assert set(row) == {"protocol", "dataset", "scale", "target", "engine", "psnr_cbcr", "psnr_rgb", "ssim", "ms", "n"}


def test_summary_means_and_markdown_table():
    base = dict(protocol="video", dataset="d", case="c", scale=4, target="near", ssim=0.9, ms=1.0)
    records = [
        {**base, "engine": "naive", "psnr_rgb": 30.0, "psnr_cbcr": 40.0},
        {**base, "engine": "naive", "psnr_rgb": 32.0, "psnr_cbcr": 42.0},
        {**base, "engine": "guided", "psnr_rgb": 35.0, "psnr_cbcr": 45.0},
    ]
    summary = summarize(records)
    assert summary[0]["psnr_cbcr"] == 41.0 and summary[0]["n"] == 2
    table = markdown_table(summary)
    assert "naive CbCr dB" in table and "guided CbCr dB" in table
    assert "| video | d | x4 | near | 2 | 41.00 | 31.00 | 0.9000 | 1.0 | 45.00 |" in table


def test_side_by_side_has_five_panels():
    case = _synthetic_cases()[0]
    strip = side_by_side(case, case.truth, "naive")
    assert strip.shape == (64, 5 * 80, 3) and strip.dtype == np.uint8


def test_missing_data_folder_says_how_to_install(tmp_path, monkeypatch, capsys):
    with pytest.raises(SourceError, match="--data"):
        data_dir(tmp_path / "nope")
    monkeypatch.setattr("streamfuse.evaluation.data.DEFAULT_DATA", tmp_path / "absent")
    with pytest.raises(SourceError, match="apt-get install opencv-doc"):
        data_dir(None)
    assert main(["eval", "--data", str(tmp_path / "nope"), "--engines", "naive"]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.skipif(not __import__("os").path.isfile(f"{OPENCV_DATA}/tree.avi"), reason="opencv-doc not installed")
def test_tree_video_has_nine_clips():
    clips = load_clips(f"{OPENCV_DATA}/tree.avi")
    assert len(clips) == 9 and all(len(frames) == 3 for frames in clips.values())


def test_eval_command_end_to_end_on_generated_data(tmp_path, capsys):
    """The whole `streamfuse eval` on a small stand-in for the opencv-doc folder: table, JSON, plot, images."""
    data = tmp_path / "data"
    data.mkdir()
    for i, name in enumerate(("vtest.avi", "Megamind.avi", "tree.avi")):
        scene = textured_scene(48, 64, seed=10 + i)
        _write_avi(data / name, [np.roll(scene, k, axis=1) for k in range(15)])  # clips at frames 0 and 7
    for i, (left, right) in enumerate((("aloeL.jpg", "aloeR.jpg"), ("rubberwhale1.png", "rubberwhale2.png"))):
        scene = textured_scene(48, 64, seed=20 + i)
        cv2.imwrite(str(data / left), cv2.cvtColor(scene, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(data / right), cv2.cvtColor(np.roll(scene, 3, axis=1), cv2.COLOR_RGB2BGR))
    out = tmp_path / "eval.json"
    argv = ["eval", "--data", str(data), "--engines", "naive", "--quick", "--json", str(out)]
    assert main([*argv, "--images", str(tmp_path / "img")]) == 0
    doc = json.loads(out.read_text())
    # video: 3 videos x 2 clips x 2 scales x 2 targets; stereo: 2 pairs x 2 scales x 2 setups
    assert len(doc["records"]) == 3 * 2 * 2 * 2 + 8
    assert {r["target"] for r in doc["records"]} == {"near", "far", "Setup1", "Setup2"}
    assert "| video | vtest | x4 | near | 2 |" in capsys.readouterr().out
    assert (tmp_path / "eval.png").is_file()
    assert len(list((tmp_path / "img").glob("*.png"))) == 3 * 2 * 2 * 2 + 8  # 2 clips per video are shown
