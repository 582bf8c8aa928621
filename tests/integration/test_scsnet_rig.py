"""A rig whose output is larger than its mono camera: scsnet enlarges 2x inside real capture/fuse/encode nodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest
from conftest import moving_frames, write_video

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamfuse.models.scsnet_arch import CONFIGS, build_model  # noqa: E402
from streamfuse.train.scsnet import SCSNetConfig, SCSNetTrainer  # noqa: E402

pytestmark = pytest.mark.slow

RIG = """\
name: scsnet-rig
mode: offline
synthetic:
  video: {video}
  scale: 2
  color_fps_ratio: 0.5
cameras:
  mono: {{role: mono, source: synthetic, fps: 30}}
  color: {{role: color, source: synthetic}}
engine:
  name: scsnet
  options: {{scale: 2.0, model: {model}}}
outputs:
  - path: {out}
  - path: {sbs}
    side_by_side: true
"""


def test_rig_output_is_larger_than_the_mono_camera(tmp_path: Path) -> None:
    torch.manual_seed(0)
    trainer = SCSNetTrainer()
    trainer.cfg = SCSNetConfig(model="scsnet")
    model = tmp_path / "model"
    trainer.export(build_model(CONFIGS["scsnet"]), model, None)
    video = write_video(tmp_path / "scene.mp4", moving_frames(16, 64, 96, speed=2))
    rig = tmp_path / "rig.yaml"
    rig.write_text(RIG.format(video=video, model=model, out=tmp_path / "out.mp4", sbs=tmp_path / "sbs.mkv"))
    summary_path = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "streamfuse", "run", str(rig), "--frames", "8", "--json", str(summary_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(summary_path.read_text())
    assert summary["frames_in"] == summary["frames_out"] == 8
    for name, shape in (("out.mp4", (128, 192, 3)), ("sbs.mkv", (128, 384, 3))):
        with av.open(str(tmp_path / name)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 8 and frames[0].shape == shape
