"""The stream protocol: references every K frames, every mono frame in order, all/far PSNR and tCE, pooled tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import moving_frames, textured_scene, write_video

from streamfuse.cli import main
from streamfuse.color import luma
from streamfuse.data.degrade import downsample
from streamfuse.engines import load_engine
from streamfuse.evaluation import stream
from streamfuse.evaluation.report import markdown_table, summarize


def _clip(n: int = 13) -> list[np.ndarray]:
    return moving_frames(n, 48, 64, speed=2)


def test_far_frames_are_k_minus_1_after_their_reference() -> None:
    assert stream.far_frames(3) == [2, 5, 8, 11]
    assert stream.far_frames(6) == [5, 11]
    assert stream.SETTINGS == ((4, 3), (4, 6), (8, 6))


@pytest.mark.parametrize(("scale", "period", "refs"), [(4, 3, 5), (4, 6, 3), (8, 6, 3)])
def test_stream_gets_a_reference_every_k_frames_and_every_mono_frame(scale: int, period: int, refs: int) -> None:
    engine = load_engine("naive")
    frames = _clip()
    outputs, ms = stream.run_stream(engine, frames, scale, period)
    assert engine.reference_calls == refs and len(outputs) == 13 and ms > 0
    # a frame-wise engine's stream output at t is its frame-wise output with the latest reference (t - t % K)
    for t in (0, period - 1, 12):
        ref = downsample(frames[t - t % period], scale)
        np.testing.assert_array_equal(outputs[t], engine.colorize(luma(frames[t]), ref))


def test_tce_is_zero_for_a_steady_error_and_measures_flicker() -> None:
    truths = [np.clip(textured_scene(48, 64, seed=i), 40, 200).astype(np.uint8) for i in range(5)]
    steady = [cv2.add(t, (10, 0, 0, 0)) for t in truths]  # the same chroma error every frame: no flicker
    assert stream.temporal_chroma_error(truths, truths) == 0.0
    assert stream.temporal_chroma_error(steady, truths) == pytest.approx(0.0, abs=1e-6)
    flicker = [cv2.add(t, (10, 0, 0, 0)) if i % 2 else t for i, t in enumerate(truths)]
    # every step changes R by ±10: Cb by ∓1.687, Cr by ±5; RMS over both planes
    expected = 10 * math.sqrt((0.168736**2 + 0.5**2) / 2)
    assert stream.temporal_chroma_error(flicker, truths) == pytest.approx(expected, rel=1e-4)


def test_far_score_averages_only_the_far_frames() -> None:
    truths = [np.clip(textured_scene(48, 64, seed=i), 40, 200).astype(np.uint8) for i in range(13)]
    outputs = [cv2.add(t, (6 if i in (5, 11) else 2, 0, 0, 0)) for i, t in enumerate(truths)]
    m = stream.score_clip(outputs, truths, period=6)
    assert m["psnr_cbcr_far"] < m["psnr_cbcr"] - 3
    far_only = stream.score_clip([outputs[5]] * 13, [truths[5]] * 13, period=6)["psnr_cbcr"]
    assert m["psnr_cbcr_far"] == pytest.approx(far_only, rel=1e-6)


def test_stream_clips_skip_scene_cuts(tmp_path: Path) -> None:
    cut = _clip(20) + [255 - f for f in _clip(20)]  # a cut between 19 and 20 drops the clip starting at 13
    path = write_video(tmp_path / "cut.mp4", cut)
    clips = list(stream.stream_clips(path))
    assert [c.case for c in clips] == ["clip0000", "clip0026"]
    assert all(len(c.frames) == 13 and c.dataset == "cut" for c in clips)


def test_eval_stream_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`streamfuse eval --protocol stream` on a stand-in for the opencv-doc folder: records, pooled table, JSON."""
    data = tmp_path / "data"
    data.mkdir()
    for i, name in enumerate(("vtest.avi", "Megamind.avi", "tree.avi")):
        frames = [np.roll(textured_scene(48, 64, seed=10 + i), 2 * k, axis=1) for k in range(30)]  # 2 clips each
        write_video(data / name, frames)
    out = tmp_path / "stream.json"
    argv = ["eval", "--protocol", "stream", "--data", str(data), "--engines", "naive,guided", "--json", str(out)]
    assert main([*argv, "--images", str(tmp_path / "img")]) == 0
    doc = json.loads(out.read_text())
    records = doc["records"]
    assert len(records) == 3 * 2 * 3 * 2  # videos x clips x settings x engines
    assert {(r["scale"], r["target"]) for r in records} == {(4, "K3"), (4, "K6"), (8, "K6")}
    assert all(r["protocol"] == "stream" and r["tce"] >= 0 and r["psnr_cbcr_far"] > 0 for r in records)
    pooled = [r for r in doc["summary"] if r["dataset"] == "pooled"]
    assert len(pooled) == 3 * 2 and all(r["n"] == 6 for r in pooled)
    naive_k3 = [r["psnr_cbcr_far"] for r in records if r["engine"] == "naive" and r["target"] == "K3"]
    pooled_k3 = next(r for r in pooled if r["engine"] == "naive" and r["target"] == "K3")
    assert pooled_k3["psnr_cbcr_far"] == pytest.approx(np.mean(naive_k3), abs=1e-3)
    table = capsys.readouterr().out
    assert "| stream dataset | s | K | clips | naive all dB | naive far dB | naive tCE |" in table
    assert "| **pooled** | x8 | 6 | 6 |" in table
    assert (tmp_path / "stream.png").is_file()
    assert len(list((tmp_path / "img").glob("*_K6_*.png"))) > 0


def test_video_tables_are_unchanged_by_stream_rows() -> None:
    base = dict(protocol="video", dataset="d", case="c", scale=4, target="near", ssim=0.9, ms=1.0)
    video = [{**base, "engine": "naive", "psnr_rgb": 30.0, "psnr_cbcr": 40.0}]
    s = {**base, "protocol": "stream", "target": "K3", "engine": "naive", "psnr_rgb": 1.0, "psnr_cbcr": 2.0}
    both = markdown_table(summarize([*video, {**s, "psnr_cbcr_far": 1.5, "tce": 0.5}]))
    assert both.startswith(markdown_table(summarize(video)))
    assert "| **pooled** | x4 | 3 | 1 | 2.00 | 1.50 | 0.50 | 1.0 |" in both
