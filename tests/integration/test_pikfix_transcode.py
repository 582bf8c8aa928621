"""`streamfuse transcode --engine pikfix --mono old.mp4 --ref refs/ -o out.mp4` with real node processes: every
damaged frame comes out colorized, and the reference is retrieved from the folder per shot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import moving_frames, textured_scene, write_video

from streamfuse.data.oldfilm import damage_clip
from streamfuse.imageio import write_rgb

pytestmark = pytest.mark.slow


def test_transcode_old_film_with_a_reference_folder(tmp_path: Path) -> None:
    frames = moving_frames(10, 96, 128)
    old = [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in damage_clip(frames, np.random.default_rng(0))]
    mono = write_video(tmp_path / "old.mp4", old, fps=10)
    refs = tmp_path / "refs"
    write_rgb(refs / "a_unrelated.png", textured_scene(96, 128, seed=11))
    write_rgb(refs / "b_match.png", frames[0])
    out, summary_json = tmp_path / "out.mp4", tmp_path / "out.json"
    cmd = [sys.executable, "-m", "streamfuse", "transcode", "-q", "--engine", "pikfix", "--mono", str(mono)]
    cmd += ["--ref", str(refs), "-o", str(out), "--json", str(summary_json)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(summary_json.read_text())["exit_code"] == 0
    with av.open(str(out)) as box:
        decoded = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(decoded) == 10
    chroma = cv2.cvtColor(decoded[-1], cv2.COLOR_RGB2YCrCb)[..., 1:].astype(float)
    truth = cv2.cvtColor(frames[-1], cv2.COLOR_RGB2YCrCb)[..., 1:].astype(float)
    assert chroma.std() > 5  # colorized, not grey
    assert np.abs(chroma - truth).mean() < np.abs(chroma - 128).mean()  # the matching reference's colours
