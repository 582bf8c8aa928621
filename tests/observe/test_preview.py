"""The preview: snapshots are side-by-side JPEGs written atomically; the aiohttp server serves page, frames, stats."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("aiohttp")
from streamfuse.observe.preview import TILE_HEIGHT, PreviewServer, PreviewSnapshots, compose  # noqa: E402


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


def test_compose_puts_three_views_side_by_side() -> None:
    mono = np.full((480, 640), 100, np.uint8)
    ref = np.zeros((120, 160, 3), np.uint8)
    ref[..., 0] = 255
    out = np.zeros((480, 640, 3), np.uint8)
    out[..., 1] = 200
    tile = compose(mono, ref, out)
    assert tile.shape == (TILE_HEIGHT, 3 * 320, 3)
    assert tile[:, :320].std() == 0 and tile[0, 0, 0] == 100  # grey mono
    assert tuple(tile[10, 400]) == (255, 0, 0)  # enlarged reference
    assert tuple(tile[10, 700]) == (0, 200, 0)  # output


def test_snapshots_are_rate_limited(tmp_path: Path) -> None:
    snaps = PreviewSnapshots(tmp_path, rate_hz=0.001, on_demand=False)
    frame = np.zeros((64, 64, 3), np.uint8)
    assert snaps.offer("m0", frame[..., 0], frame, frame)
    assert not snaps.offer("m0", frame[..., 0], frame, frame)  # not due again for 1000 s
    assert snaps.offer("m1", frame[..., 0], None, frame)  # per camera
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0.jpg", "m1.jpg"]  # no temporary file left
    assert not PreviewSnapshots(None).due("m0")


def test_snapshots_are_made_only_while_a_page_watches(tmp_path: Path) -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    snaps = PreviewSnapshots(tmp_path)
    assert not snaps.offer("m0", frame[..., 0], frame, frame)  # nobody watching: no work at all
    server = PreviewServer(tmp_path, dict, "127.0.0.1", 0)
    try:
        assert get(server.url + "frame/m0.jpg")[0] == 404  # a page asks: the folder is marked watched
    finally:
        server.close()
    snaps._checked = 0.0  # (it looks at most once a second)
    assert snaps.offer("m0", frame[..., 0], frame, frame)
    assert (tmp_path / "m0.jpg").is_file()


def test_server_serves_page_frames_and_stats(tmp_path: Path) -> None:
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, :, 2] = 255
    PreviewSnapshots(tmp_path, on_demand=False).offer("m0", rgb[..., 0], rgb, rgb)
    stats = {"cameras": ["m0"], "elapsed_s": 1.0, "nodes": {"fuse": {"frames": 3}}}
    server = PreviewServer(tmp_path, lambda: stats, "127.0.0.1", 0)
    try:
        status, page, ctype = get(server.url)
        assert status == 200 and "text/html" in ctype and b"/stats.json" in page
        status, body, ctype = get(server.url + "stats.json")
        assert status == 200 and json.loads(body) == stats
        status, jpeg, ctype = get(server.url + "frame/m0.jpg")
        assert status == 200 and ctype == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (TILE_HEIGHT, 3 * 320, 3) and image[100, 500, 0] > 200  # blue, in BGR order
        assert get(server.url + "frame/nope.jpg")[0] == 404
    finally:
        server.close()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    first = PreviewServer(tmp_path, dict, "127.0.0.1", 0)
    try:
        with pytest.raises(OSError, match="cannot serve the preview"):
            PreviewServer(tmp_path, dict, "127.0.0.1", first.port)
    finally:
        first.close()
