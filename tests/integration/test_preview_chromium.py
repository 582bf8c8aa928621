"""The live preview in a real browser: headless Debian Chromium screenshots the page of a running rig twice; the
views show colour, and they move between the two shots."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamfuse.config import dump_config, synthetic_rig_config

pytestmark = pytest.mark.slow
pytest.importorskip("aiohttp")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def colourful(rgb: np.ndarray) -> bool:
    """More than a fifth of the pixels clearly coloured (the grey mono view and a grey fallback are not)."""
    pixels = rgb.reshape(-1, 3).astype(int)
    return float(np.mean(pixels.max(axis=1) - pixels.min(axis=1) > 40)) > 0.2


def wait_for_colour(url: str, timeout: float) -> bool:
    """Wait until the preview frame's output view is in colour (before the colour camera's first frame arrives,
    the fusion node rightly passes the mono frame through grey)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                tile = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
            if tile is not None and colourful(tile[:, 2 * tile.shape[1] // 3 :]):
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def screenshot(url: str, path: Path) -> np.ndarray:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,420"]
    argv += ["--virtual-time-budget=1500", f"--screenshot={path}", url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and path.is_file(), proc.stderr[-1000:]
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def views(shot: np.ndarray) -> np.ndarray:
    """The pixels of the three views: everything that is not the page's near-black background or its text."""
    body = shot[50:300]  # the first camera's row of views (page title above, counters below)
    return body[body.max(axis=2) > 40]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
@pytest.mark.timeout(150)
def test_preview_page_shows_moving_colour_frames(tmp_path: Path) -> None:
    # 10 fps mono, 5 fps colour: replayed cameras that keep up with real time even on a loaded machine (one that
    # falls behind stamps its frames late, and its partner's references are then all newer than they are)
    out = str(tmp_path / "live.mp4")
    cfg = synthetic_rig_config((320, 240), engine="guided", mode="live", output=out, fps=10.0, color_fps_ratio=0.5)
    config = tmp_path / "rig.yaml"
    dump_config(cfg, config)
    port = free_port()
    argv = [sys.executable, "-m", "streamfuse", "run", str(config), "--duration", "25", "--preview-port", str(port)]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        assert wait_for_colour(url + "frame/mono.jpg", 30), "the fusion node never published a colour preview frame"
        first = screenshot(url, tmp_path / "first.png")
        time.sleep(1.0)
        second = screenshot(url, tmp_path / "second.png")
    finally:
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err[-2000:]
    for shot in (first, second):
        pixels = views(shot)
        assert len(pixels) > 50_000  # three 320x240 views are on the page
        assert colourful(pixels)  # the reference and the output are in colour (the mono view is grey)
    moved = np.abs(first[50:300].astype(int) - second[50:300].astype(int)).max(axis=2)
    assert np.mean(moved > 30) > 0.02  # the frames moved between the two screenshots
