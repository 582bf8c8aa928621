"""NIR cameras end to end: real processes, real ZeroMQ sockets, real PyAV files, the shipped cocolor engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import moving_frames, write_video

from streamfuse.color import rgb_to_ycbcr
from streamfuse.sources.synthetic_nir import simulate_nir

pytestmark = pytest.mark.slow
FRAMES = 24

RIG = """\
name: nir-e2e
mode: offline
cameras:
  nir: {{role: nir, source: file, path: {nir}}}
{colour}engine:
  name: {engine}
outputs:
  - path: {out}
"""
COLOUR = "  color: {{role: color, source: file, path: {path}}}\n"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An NIR recording (simulated NIR of a moving scene, stored as a grey video) and a 4x coarser colour one."""
    folder = tmp_path_factory.mktemp("nir-media")
    scene = moving_frames(FRAMES, 160, 224, speed=2)
    nir = [cv2.cvtColor(simulate_nir(f), cv2.COLOR_GRAY2RGB) for f in scene]
    colour = [cv2.resize(f, (56, 40), interpolation=cv2.INTER_AREA) for f in scene]
    return write_video(folder / "nir.mp4", nir), write_video(folder / "colour.mp4", colour)


def run_rig(tmp_path: Path, nir: Path, colour: Path | None, engine: str = "cocolor") -> subprocess.CompletedProcess:
    rig = tmp_path / "rig.yaml"
    block = COLOUR.format(path=colour) if colour else ""
    rig.write_text(RIG.format(nir=nir, colour=block, engine=engine, out=tmp_path / "out.mp4"))
    cmd = [sys.executable, "-m", "streamfuse", "run", str(rig), "--json", str(tmp_path / "summary.json")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def colourfulness(frames: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(rgb_to_ycbcr(f)[..., 1:].astype(np.float32) - 128).mean() for f in frames]))


@pytest.mark.parametrize("with_colour", [True, False], ids=["nir+colour", "nir-alone"])
def test_nir_file_source_frames_in_equal_frames_out(tmp_path: Path, media, with_colour: bool) -> None:
    nir, colour = media
    proc = run_rig(tmp_path, nir, colour if with_colour else None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames_in"] == summary["frames_out"] == FRAMES
    assert summary["rejected"] == {} and summary["fuse_output_dropped"] == 0
    frames = decoded(tmp_path / "out.mp4")
    assert len(frames) == FRAMES and frames[0].shape == (160, 224, 3)
    assert colourfulness(frames) > 2.0  # a colour video, not the grey NIR


SYNTHETIC_RIG = """\
name: nir-synthetic
mode: offline
synthetic:
  video: {video}
  scale: 4
  parallax: {{shift: [4, 2]}}
  color_fps_ratio: 0.5
cameras:
  nir: {{role: nir, source: synthetic, fps: 30}}
  color: {{role: color, source: synthetic}}
engine:
  name: cocolor
outputs:
  - path: {out}
"""


def test_synthetic_nir_rig_writes_a_colour_video(tmp_path: Path) -> None:
    video = write_video(tmp_path / "scene.mp4", moving_frames(FRAMES, 160, 224, speed=2))
    rig = tmp_path / "rig.yaml"
    rig.write_text(SYNTHETIC_RIG.format(video=video, out=tmp_path / "out.mp4"))
    cmd = [sys.executable, "-m", "streamfuse", "run", str(rig), "--json", str(tmp_path / "summary.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames_in"] == summary["frames_out"] == FRAMES and summary["rejected"] == {}
    assert summary["psnr_cbcr"] > 25  # scored against the scene's true colour, which the synthetic rig knows
    assert colourfulness(decoded(tmp_path / "out.mp4")) > 2.0


def test_engine_that_cannot_take_nir_is_refused_before_start(tmp_path: Path, media) -> None:
    nir, colour = media
    proc = run_rig(tmp_path, nir, colour, engine="guided")
    assert proc.returncode != 0
    assert "rig.yaml:" in proc.stderr and "engine.name" in proc.stderr and "cannot take NIR" in proc.stderr
    assert not (tmp_path / "out.mp4").exists()
