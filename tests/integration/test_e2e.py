"""End to end with real processes, real ZeroMQ sockets and real PyAV encoding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import moving_frames, write_video

from streamfuse.color import luma

pytestmark = pytest.mark.slow

RIG = """\
name: e2e
mode: {mode}
synthetic:
  video: {video}
  scale: 4
  parallax: {{shift: [3, 1]}}
  color_fps_ratio: 0.5
  loop: {loop}
cameras:
  mono: {{role: mono, source: synthetic, fps: 30}}
  color: {{role: color, source: synthetic}}
outputs:
  - path: {out}
  - path: {sbs}
    side_by_side: true
"""


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    frames = moving_frames(40, 120, 160, speed=3)
    return write_video(tmp_path / "scene.mp4", frames), frames


def rig(tmp_path: Path, video: Path, mode: str = "offline", loop: bool = False) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(
        RIG.format(mode=mode, video=video, loop=str(loop).lower(), out=tmp_path / "out.mp4", sbs=tmp_path / "sbs.mkv")
    )
    return path


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [float(f.pts * f.time_base) for f in frames]


def playable_frames(path: Path) -> int:
    """Frames decodable so far from a recording in progress (0 while it does not exist yet)."""
    if not path.exists():
        return 0
    count = 0
    try:
        with av.open(str(path)) as container:
            for packet in container.demux(video=0):
                count += len(packet.decode())
    except av.error.FFmpegError:
        pass  # the tail fragment is still being written
    return count


def check_in_order(decoded: list[np.ndarray], truth: list[np.ndarray]) -> None:
    """Each output frame i is closest to input frame i (nothing lost, duplicated or reordered)."""
    truth_y = np.stack([luma(t).astype(np.float32) for t in truth])
    for i, frame in enumerate(decoded):
        err = np.abs(truth_y - luma(frame).astype(np.float32)).mean(axis=(1, 2))
        assert int(np.argmin(err)) == i


def test_offline_run_frames_in_equal_frames_out_in_order(tmp_path: Path, scene) -> None:
    video, truth = scene
    summary_path = tmp_path / "summary.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamfuse",
            "run",
            str(rig(tmp_path, video)),
            "--frames",
            "30",
            "--json",
            str(summary_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(summary_path.read_text())
    assert summary["frames_in"] == summary["frames_out"] == 30
    assert summary["capture_dropped"] == summary["fuse_stale_dropped"] == summary["fuse_output_dropped"] == 0
    assert summary["sync"]["references_prepared"] == 15  # colour at half rate: each reference used twice
    assert summary["psnr_cbcr"] > 25  # colour came through (a grey output scores far lower on this scene)
    decoded, times = decode(tmp_path / "out.mp4")
    assert len(decoded) == 30 and decoded[0].shape == (120, 160, 3)
    assert times == pytest.approx([i / 30 for i in range(30)], abs=2e-3)
    check_in_order(decoded, truth[:30])
    sbs, _ = decode(tmp_path / "sbs.mkv")
    assert len(sbs) == 30 and sbs[0].shape == (120, 320, 3)
    assert "run summary" in proc.stdout and "chroma PSNR" in proc.stdout


def test_standalone_nodes_form_a_rig(tmp_path: Path, scene) -> None:
    video, truth = scene
    cfg = rig(tmp_path, video)
    run_dir = tmp_path / "links"
    base = [sys.executable, "-m", "streamfuse", "node"]
    common = ["--config", str(cfg), "--run-dir", str(run_dir)]
    procs = [
        subprocess.Popen(base + ["encode", *common], stdout=subprocess.PIPE, text=True),
        subprocess.Popen(base + ["fuse", *common], stdout=subprocess.PIPE, text=True),
        subprocess.Popen(base + ["capture", "--name", "color", *common], stdout=subprocess.PIPE, text=True),
        subprocess.Popen(base + ["capture", "--name", "mono", *common], stdout=subprocess.PIPE, text=True),
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert json.loads(outs[3])["sent"] == 40 and json.loads(outs[1])["frames"] == 40
    decoded, _ = decode(tmp_path / "out.mp4")
    assert len(decoded) == 40
    check_in_order(decoded, truth)


def test_live_run_stops_cleanly_on_sigint(tmp_path: Path, scene) -> None:
    video, _ = scene
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamfuse",
            "run",
            str(rig(tmp_path, video, "live", loop=True)),
            "--json",
            str(tmp_path / "s.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and playable_frames(tmp_path / "out.mp4") < 20:
        time.sleep(0.2)  # poll: the fragmented MP4 is readable while it is being written
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["stopped_by"] == "SIGINT"
    assert all(code == 0 for code in summary["exit_codes"].values())
    decoded, times = decode(tmp_path / "out.mp4")  # finalized: decodes cleanly to the end
    assert len(decoded) >= 20 and all(b > a for a, b in zip(times, times[1:], strict=False))
    assert summary["frames_out"] == len(decoded)
    orphans = subprocess.run(["pgrep", "-f", f"--config {tmp_path}"], capture_output=True, text=True).stdout
    assert orphans.strip() == "", "a node process outlived the launcher"
    assert os.path.exists(tmp_path / "sbs.mkv")
