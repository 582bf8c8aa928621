"""Live preview (``streamfuse run --preview-port P``): a small web page with mono | colour reference | output per
mono camera, and the rig's fps, latency and drop counters.

The fusion node drops a small JPEG of each pair into a folder a few times a second (:class:`PreviewSnapshots`,
atomic renames, so a reader never sees half a file) while a page is watching; the launcher serves the folder and its
live stats with aiohttp (:class:`PreviewServer`), and marks the folder watched when a page asks for a frame. The page
polls both; it needs no script or style from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb

log = logging.getLogger("streamfuse.preview")

TILE_HEIGHT = 240  # each of the three views is scaled to this height
SNAPSHOT_HZ = 5.0  # preview images per second and camera (about 2 ms of the fusion node's time each)
JPEG_QUALITY = 80
WATCHED = ".watched"  # touched by the server when a page asks for a frame; snapshots are made only while watched
WATCH_S = 10.0  # a viewer counts as watching this long after its last frame request


def compose(
    mono: np.ndarray, reference: np.ndarray | None, output: np.ndarray, height: int = TILE_HEIGHT
) -> np.ndarray:
    """mono | colour reference (enlarged) | output, side by side at one height (RGB uint8)."""

    def fit(image: np.ndarray) -> np.ndarray:  # resize first, then make RGB, bilinear: the fusion node pays for it
        width = max(1, round(image.shape[1] * height / image.shape[0]))
        small = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        return gray_to_rgb(small) if small.ndim == 2 else small

    out = fit(output)
    ref = fit(reference) if reference is not None else np.zeros_like(out)
    return np.hstack([fit(mono), ref, out])


class PreviewSnapshots:
    """Writes ``folder/CAMERA.jpg`` at most ``rate_hz`` times a second per camera, while a page is watching (or
    always, without ``on_demand``); a no-op without a folder."""

    def __init__(self, folder: str | Path | None, rate_hz: float = SNAPSHOT_HZ, on_demand: bool = True) -> None:
        self.folder = Path(folder) if folder else None
        self.period_s = 1.0 / rate_hz
        self.on_demand = on_demand
        self._due: dict[str, float] = {}
        self._watched = False
        self._checked = 0.0
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def watched(self) -> bool:
        """Whether a page asked for a frame in the last ``WATCH_S`` (looked up at most once a second)."""
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            try:
                self._watched = time.time() - (self.folder / WATCHED).stat().st_mtime < WATCH_S
            except OSError:
                self._watched = False
        return self._watched

    def due(self, camera: str) -> bool:
        """Whether a snapshot of ``camera`` is wanted now (check before composing anything)."""
        if self.folder is None or time.monotonic() < self._due.get(camera, 0.0):
            return False
        return not self.on_demand or self.watched()

    def offer(self, camera: str, mono: np.ndarray, reference: np.ndarray | None, output: np.ndarray) -> bool:
        """Write a snapshot of this pair if one is due; returns whether it did."""
        if not self.due(camera):
            return False
        self._due[camera] = time.monotonic() + self.period_s
        tile = compose(mono, reference, output)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(tile, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return False
        tmp = self.folder / f".{camera}.jpg.tmp"
        tmp.write_bytes(jpeg.tobytes())
        os.replace(tmp, self.folder / f"{camera}.jpg")
        return True


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>streamfuse preview</title>
<style>
body { background: #111; color: #ddd; font: 14px sans-serif; margin: 12px; }
h2 { font-size: 15px; margin: 10px 0 4px; } img { display: block; max-width: 100%; background: #000; }
table { border-collapse: collapse; margin-top: 10px; } td, th { padding: 2px 10px; text-align: right; }
th { color: #aaa; font-weight: normal; } td:first-child, th:first-child { text-align: left; }
</style></head>
<body>
<div id="title">streamfuse preview: mono | colour reference | output</div>
<div id="views"></div>
<table id="stats"><tr><th>node</th><th>frames</th><th>fps</th><th>latency ms</th><th>dropped</th><th>rejected</th>
<th>restarts</th></tr></table>
<script>
const views = {};
function refresh(cam) {
  const img = views[cam];
  img.onload = img.onerror = () => setTimeout(() => refresh(cam), 150);
  img.src = "/frame/" + encodeURIComponent(cam) + ".jpg?t=" + Date.now();
}
async function poll() {
  try {
    const s = await (await fetch("/stats.json?t=" + Date.now())).json();
    for (const cam of s.cameras) {
      if (views[cam]) continue;
      const h = document.createElement("h2"); h.textContent = cam;
      const img = document.createElement("img"); img.id = "view-" + cam; img.alt = cam;
      document.getElementById("views").append(h, img); views[cam] = img; refresh(cam);
    }
    const rows = Object.entries(s.nodes).map(([name, n]) =>
      "<tr><td>" + name + "</td><td>" + (n.frames ?? "") + "</td><td>" + (n.fps ?? "") + "</td><td>" +
      (n.latency_ms ?? "") + "</td><td>" + (n.dropped ?? 0) + "</td><td>" + (n.rejected ?? 0) + "</td><td>" +
      (n.restarts ?? 0) + "</td></tr>");
    const table = document.getElementById("stats");
    table.innerHTML = table.rows[0].outerHTML + rows.join("");
    document.getElementById("title").textContent = "streamfuse preview: mono | colour reference | output   (" +
      s.elapsed_s.toFixed(1) + " s)";
  } catch (e) {}
  setTimeout(poll, 500);
}
poll();
</script></body></html>
"""


class PreviewServer:
    """Serves the preview page, ``/frame/CAMERA.jpg`` from the snapshot folder and ``/stats.json`` (aiohttp)."""

    def __init__(self, folder: str | Path | None, stats: Callable[[], dict[str, Any]], host: str, port: int) -> None:
        from aiohttp import web

        self.folder = Path(folder) if folder is not None else None  # set later when the run folder is made
        self.stats = stats
        self.host = host
        self.port = port
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/stats.json", self._stats)
        app.router.add_get("/frame/{camera}.jpg", self._frame)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._touched = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="preview", daemon=True)
        self._thread.start()
        if not self._started.wait(10.0):
            raise RuntimeError("preview server did not start within 10 s")
        if self._error is not None:
            raise OSError(f"cannot serve the preview on {host}:{port}: {self._error}") from self._error
        log.info("preview on %s", self.url)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def _serve(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, self.port)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked for
        except OSError as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def _page(self, _request):
        from aiohttp import web

        return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _stats(self, _request):
        from aiohttp import web

        return web.Response(text=json.dumps(self.stats(), default=str), content_type="application/json")

    async def _frame(self, request):
        from aiohttp import web

        camera = request.match_info["camera"]
        self._watching()
        path = self.folder / f"{camera}.jpg" if self.folder is not None else None
        if "/" in camera or camera.startswith(".") or path is None or not path.is_file():
            raise web.HTTPNotFound(text=f"no preview of camera {camera!r} yet")
        return web.Response(body=path.read_bytes(), content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def _watching(self) -> None:
        """Tell the fusion node that a page is watching (it makes snapshots only then)."""
        now = time.monotonic()
        if self.folder is None or now - self._touched < 1.0:
            return
        self._touched = now
        with contextlib.suppress(OSError):
            (self.folder / WATCHED).touch()

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
