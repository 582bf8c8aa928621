"""A camera array end to end: 3 mono + 2 colour synthetic cameras, partners picked by position, one fusion node
with one engine stream per pair, one video per mono camera plus a mosaic; every camera in the summary, the metrics
and the trace."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from streamfuse.config import config_from_dict
from streamfuse.nodes.launcher import run_pipeline
from streamfuse.observe.trace import STAGES, stage_spans

pytestmark = pytest.mark.slow


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def array_rig(tmp_path: Path, video: Path, observe: dict) -> dict:
    cam = {"role": "mono", "source": "synthetic", "fps": 30.0}
    return {
        "name": "array",
        "synthetic": {"video": str(video), "scale": 4.0, "parallax": {"shift": [2.0, 1.0]}, "color_fps_ratio": 0.5},
        "cameras": {
            "left": {**cam, "view_shift": [-6.0, 0.0], "position": [-0.1, 0.0, 0.0]},
            "centre": {**cam, "position": [0.0, 0.0, 0.0]},
            "right": {**cam, "view_shift": [6.0, 0.0], "position": [0.1, 0.0, 0.0]},
            "cl": {"role": "color", "source": "synthetic", "position": [-0.05, 0.02, 0.0]},
            "cr": {"role": "color", "source": "synthetic", "position": [0.08, 0.02, 0.0]},
        },
        "engine": {"name": "guided"},
        "outputs": [
            {"path": str(tmp_path / "left.mp4"), "camera": "left"},
            {"path": str(tmp_path / "centre.mp4"), "camera": "centre"},
            {"path": str(tmp_path / "right.mp4"), "camera": "right"},
            {"path": str(tmp_path / "mosaic.mp4"), "mosaic": True},
        ],
        "observe": observe,
    }


@pytest.mark.timeout(90)
def test_array_records_every_mono_camera_and_reports_every_camera(tmp_path: Path, small_video: Path) -> None:
    from streamfuse.config.schema import ObserveConfig
    from streamfuse.observe.rig import RigObserver

    cfg = config_from_dict(array_rig(tmp_path, small_video, {"trace": str(tmp_path / "trace.json")}))
    assert {m: cfg.partner_of(m) for m in cfg.mono_cameras} == {"left": "cl", "centre": "cl", "right": "cr"}
    cfg.observe = ObserveConfig(metrics_port="127.0.0.1:0", trace=str(tmp_path / "trace.json"))
    observer = RigObserver(cfg)
    try:
        summary = run_pipeline(cfg, 20, observer=observer)
        with urllib.request.urlopen(observer.urls["metrics"], timeout=5) as resp:
            metrics = resp.read().decode()
    finally:
        observer.close()

    assert all(code == 0 for code in summary["exit_codes"].values()), summary["errors"]
    videos = {name: decode(tmp_path / f"{name}.mp4") for name in ("left", "centre", "right", "mosaic")}
    assert {name: len(frames) for name, frames in videos.items()} == {
        "left": 20,
        "centre": 20,
        "right": 20,
        "mosaic": 20,
    }
    assert videos["mosaic"][0].shape == (240, 320, 3)  # 2x2 grid of 160x120, the fourth tile black
    assert videos["mosaic"][5][120:, 160:].max() < 20
    # each camera records its own view: the left and right cameras see the scene 12 px apart
    left, right = (videos[n][10].astype(int) for n in ("left", "right"))
    assert np.abs(left[:, 20:-20] - right[:, 20:-20]).mean() > 3 * np.abs(left[:, 14:-26] - right[:, 26:-14]).mean()
    assert summary["sync"].get("no_reference", 0) == 0  # offline, one colour camera shared by two pairs loses nothing
    assert summary["psnr_cbcr"] > 25  # every pair colorized against its own truth (grey scores far lower)

    cams = summary["cameras"]
    assert set(cams) == {"left", "centre", "right", "cl", "cr"}
    assert all(cams[m]["sent"] == 20 and cams[m]["frames_out"] == 20 for m in ("left", "centre", "right"))
    assert cams["right"]["partner"] == "cr" and cams["cl"]["sent"] == cams["cr"]["sent"] == 10
    for camera in ("left", "centre", "right", "cl", "cr"):
        assert f'streamfuse_frames_in_total{{camera="{camera}"}}' in metrics
    for camera in ("left", "centre", "right"):
        assert f'streamfuse_frames_out_total{{camera="{camera}"}} 20.0' in metrics

    frames = stage_spans(tmp_path / "trace.json")
    for camera in ("left", "centre", "right"):
        mine = [stages for (cam, _), stages in frames.items() if cam == camera]
        assert len(mine) == 20 and all(list(stages) == list(STAGES) for stages in mine)
