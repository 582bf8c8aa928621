"""Nothing hangs: a run ends on its own at the end of the mono stream, after a corrupt file, and when a node dies.

Each case is a real `streamfuse run` (real processes and sockets) under a hard time limit.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import moving_frames, write_video

from streamfuse.config import dump_config, synthetic_rig_config

pytestmark = pytest.mark.slow
LIMIT_S = 25  # hard limit per run; a hang shows as a timeout, not as a stuck CI job


def file_rig(tmp_path: Path, mono: Path, colour: Path) -> Path:
    rig = {
        "mode": "offline",
        "cameras": {
            "mono": {"role": "mono", "source": "file", "path": str(mono)},
            "color": {"role": "color", "source": "file", "path": str(colour)},
        },
        "engine": {"name": "naive"},
        "outputs": [{"path": str(tmp_path / "out.mkv")}],
    }
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(rig))
    return path


def run(config: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "streamfuse", "run", str(config), "--json", str(tmp_path / "s.json"), *extra],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
    )
    summary = json.loads((tmp_path / "s.json").read_text()) if (tmp_path / "s.json").exists() else {}
    return proc, summary, time.monotonic() - t0


def test_short_mono_file_with_a_longer_colour_file_ends_with_every_mono_frame(tmp_path: Path) -> None:
    mono = write_video(tmp_path / "mono.mp4", moving_frames(20))
    colour = write_video(tmp_path / "colour.mp4", [f[::4, ::4].copy() for f in moving_frames(120, 480, 640)])
    proc, summary, _ = run(file_rig(tmp_path, mono, colour), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert summary["frames_in"] == summary["frames_out"] == 20
    assert summary["stopped_by"] == "end of input"


def test_corrupt_mono_file_ends_the_run_with_an_error(tmp_path: Path) -> None:
    mono = write_video(tmp_path / "mono.mp4", moving_frames(60))
    data = bytearray(mono.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 2000):  # 2000 flipped bytes in the middle of the file
        data[i] ^= 0xFF
    mono.write_bytes(bytes(data))
    colour = write_video(tmp_path / "colour.mp4", [f[::4, ::4].copy() for f in moving_frames(60, 480, 640)])
    proc, summary, wall = run(file_rig(tmp_path, mono, colour), tmp_path)
    # either the damage is caught before launch (exit 2) or the run ends with the capture node's error (exit 1)
    assert proc.returncode in (1, 2), proc.stderr[-2000:]
    assert "mono.mp4" in proc.stderr
    if summary:
        assert summary["exit_codes"]["capture:mono"] != 0 and "mono.mp4" in summary["errors"]["capture:mono"]


def test_a_killed_node_ends_the_run_with_its_error(tmp_path: Path) -> None:
    video = write_video(tmp_path / "scene.mp4", moving_frames(40))
    cfg = synthetic_rig_config((160, 120), engine="naive", output=str(tmp_path / "out.mp4"), video=video)
    cfg.synthetic.loop = True  # endless: only the failure can end this run
    config = tmp_path / "rig.yaml"
    dump_config(cfg, config)
    t0 = time.monotonic()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "streamfuse", "run", str(config), "--json", str(tmp_path / "s.json")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        fuse = None
        while fuse is None and time.monotonic() - t0 < LIMIT_S:
            fuse = next((p for p in _children(launcher.pid) if "fuse" in p[1]), None)
            time.sleep(0.2)
        assert fuse is not None, "the fusion node never started"
        time.sleep(2.0)  # frames are flowing
        Path(f"/proc/{fuse[0]}").exists() and subprocess.run(["kill", "-9", str(fuse[0])], check=True, timeout=10)
        _, err = launcher.communicate(timeout=LIMIT_S)
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGKILL)
            launcher.wait(10)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert launcher.returncode == 1
    assert summary["stopped_by"] == "node fuse failed" and summary["exit_codes"]["fuse"] == -9
    assert all(code is not None for code in summary["exit_codes"].values())  # every node exited
    assert "node fuse failed" in err


def _children(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the direct children of a process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), argv))
    return found
