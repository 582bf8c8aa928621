"""``streamfuse bench``: engine-only throughput, a cost-versus-pixels sweep, and the end-to-end pipeline.

Frames come from the built-in synthetic rig (the shipped demo clip, with motion and parallax), the same source the
pipeline run uses, so the engine-only and end-to-end figures of one run compare like with like. Every timed frame
gets a new colour reference (``prepare_reference`` + ``colorize``): the worst case of a rig whose colour camera
runs at the mono rate. Wall-clock figures on a shared machine depend on its load, so the CPU time per frame and
the load average at the start are reported too.
"""

from __future__ import annotations

import itertools
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from streamfuse.engines import load_engine
from streamfuse.size import parse_size

SWEEP_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480), (768, 576), (960, 720), (1280, 720))
WARMUP = 10


def rig_frames(size: tuple[int, int], scale: float, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count`` (mono, colour reference) pairs of the synthetic rig at ``size`` and scale gap ``scale``."""
    from streamfuse.config import synthetic_rig_config
    from streamfuse.sources.synthetic import SyntheticCamera

    cfg = synthetic_rig_config(size=size, scale=scale)
    fps = 30.0
    mono = SyntheticCamera(cfg.synthetic, "mono", fps, limit=count).frames()
    colour = SyntheticCamera(cfg.synthetic, "color", fps, limit=count).frames()
    for m, c in itertools.islice(zip(mono, colour, strict=False), count):
        yield m.image, c.image


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_engine(
    engine: str,
    size: tuple[int, int] = (768, 576),
    scale: float = 4.0,
    frames: int = 150,
    options: dict | None = None,
    warmup: int = WARMUP,
    threads: int | None = None,
    period: int = 1,
) -> dict:
    """Engine-only throughput: ``warmup`` untimed frames, then ``frames`` timed ones (reference + colorize).

    Frames go through the stream path (``engine.open_stream()``), a colour reference pushed every ``period``
    mono frames (1 = every frame), so temporal engines run as in a rig; a frame-wise engine costs the same as
    ``colorize(mono, prepare_reference(ref))``. ``threads`` sets OpenCV's thread count (None keeps its default).
    """
    if threads is not None:
        cv2.setNumThreads(int(threads))
    eng = load_engine(engine, **(options or {}))
    up = float(getattr(eng, "output_scale", 1.0))
    if up != 1.0 and "scale" not in (options or {}):  # an engine that enlarges (scsnet) enlarges by --scale
        eng = load_engine(engine, **{**(options or {}), "scale": scale})
        up = scale
    times: list[float] = []
    cpu = 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if period < 1:
        raise ValueError(f"bench: period must be >= 1, got {period}")
    stream = eng.open_stream()
    for i, (mono, ref) in enumerate(rig_frames(size, scale, warmup + frames)):
        if up != 1.0:  # --size is the output size; an enlarging engine gets the mono frame at 1/up of it
            mono = cv2.resize(mono, (round(size[0] / up), round(size[1] / up)), interpolation=cv2.INTER_AREA)
        c0, t0 = time.process_time(), time.perf_counter()
        if i % period == 0:
            stream.push_reference(ref)
        stream.colorize(mono)
        t1, c1 = time.perf_counter(), time.process_time()
        if i >= warmup:
            times.append((t1 - t0) * 1000.0)
            cpu += (c1 - c0) * 1000.0
    if not times:
        raise ValueError("bench: no timed frames; use --frames >= 1")
    ms = np.asarray(times)
    mp = size[0] * size[1] / 1e6
    return {
        "engine": engine,
        "options": dict(options or {}),
        "size": f"{size[0]}x{size[1]}",
        "scale": scale,
        "period": period,
        "frames": len(times),
        "fps": round(1000.0 / float(ms.mean()), 2),
        "mean_ms": round(float(ms.mean()), 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "cpu_ms": round(cpu / len(times), 3),
        # The rate if the engine had to itself the CPU time it used (all threads summed): an estimate that a
        # shared, loaded machine cannot spoil the way it spoils wall-clock fps.
        "cpu_fps": round(1000.0 * len(times) / cpu, 2) if cpu > 0 else None,
        "ms_per_mp": round(float(np.percentile(ms, 50)) / mp, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_avg_1m": None if load is None else round(load, 2),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "opencv_threads": cv2.getNumThreads(),
    }


def bench_pipeline(
    engine: str,
    size: tuple[int, int],
    scale: float,
    frames: int,
    options: dict | None = None,
    mode: str = "offline",
    observe: bool = False,
    config: str | Path | None = None,
) -> dict:
    """End-to-end run of the synthetic rig (capture, fuse, encode as real processes) on the same frames.

    ``config`` runs that rig.yaml instead (its outputs go to a temporary folder); ``observe`` turns metrics, the
    preview and the trace on, as an operator would, with a viewer on the preview page and a metrics scraper
    (``_Watcher``), so the preview's snapshots are made and every server answers while the frames are timed.
    """
    from streamfuse.config import load_config, synthetic_rig_config
    from streamfuse.config.schema import ObserveConfig
    from streamfuse.nodes.launcher import run_pipeline
    from streamfuse.observe.rig import RigObserver

    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        if config is not None:
            cfg = load_config(config)
            for i, out in enumerate(cfg.outputs):
                out.path = str(Path(tmp) / f"out{i}{Path(out.path).suffix}")
        else:
            cfg = synthetic_rig_config(
                size=size,
                scale=scale,
                engine=engine,
                engine_options=dict(options or {}),
                mode=mode,
                output=str(Path(tmp) / "bench.mp4"),
            )
        on = ObserveConfig(metrics_port="0", preview_port="0", trace=str(Path(tmp) / "trace.json"))
        cfg.observe = on if observe else ObserveConfig()
        observer = RigObserver(cfg)
        cpu0 = time.process_time()
        try:
            with _Watcher(observer, cfg.mono_cameras) as watcher:
                summary = run_pipeline(cfg, frames, observer=observer)
        finally:
            observer.close()
        launcher_cpu_s = time.process_time() - cpu0 - watcher.cpu_s  # the viewer's own work is not the rig's
    keys = ("e2e_fps", "latency_p50_ms", "latency_p99_ms", "frames_out", "cpu_ms_per_frame")
    out = summary.get("frames_out") or 0
    launcher_ms = round(launcher_cpu_s * 1000 / out, 2) if out else None
    return {"pipeline_mode": mode, **{k: summary.get(k) for k in keys}, "launcher_cpu_ms_per_frame": launcher_ms}


class _Watcher:
    """What an operator's tools do to a rig with observability on: a preview page fetching every camera's frame
    five times a second and its counters twice a second, and a Prometheus scrape every second (over HTTP, in a
    thread)."""

    def __init__(self, observer, cameras: list[str]) -> None:
        import threading

        self.urls = observer.urls
        self.cameras = cameras
        self.cpu_s = 0.0  # this thread's own CPU time
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        import urllib.request

        tick = 0
        while not self.done.wait(0.2):
            preview = self.urls.get("preview")
            wanted = [f"{preview}frame/{cam}.jpg" for cam in self.cameras] if preview else []
            if preview and tick % 2 == 0:
                wanted.append(f"{preview}stats.json")
            if "metrics" in self.urls and tick % 5 == 0:
                wanted.append(self.urls["metrics"])
            for url in wanted:
                try:
                    with urllib.request.urlopen(url, timeout=2) as resp:
                        resp.read()
                except OSError:
                    pass  # no frame yet (404) or a busy moment: a viewer just tries again
            tick += 1
            self.cpu_s = time.thread_time()

    def __enter__(self) -> _Watcher:
        if self.urls:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(5)


def bench_observe_overhead(
    engine: str,
    size: tuple[int, int],
    scale: float,
    frames: int,
    options: dict | None = None,
    mode: str = "offline",
    config: str | Path | None = None,
    rounds: int = 3,
) -> dict:
    """End-to-end fps with metrics, preview and trace off and on, alternated ``rounds`` times in one run (so machine
    load hits both alike); the medians and their ratio (the target is >= 0.95)."""
    runs: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(rounds):
        for key in ("off", "on"):
            result = bench_pipeline(engine, size, scale, frames, options, mode, observe=key == "on", config=config)
            runs[key].append(result["e2e_fps"] or 0.0)
            nodes = sum((result["cpu_ms_per_frame"] or {}).values())
            cpu[key].append(round(nodes + (result["launcher_cpu_ms_per_frame"] or 0.0), 2))
    off, on = (float(np.median(runs[k])) for k in ("off", "on"))
    cpu_off, cpu_on = (float(np.median(cpu[k])) for k in ("off", "on"))
    return {
        "observe_fps_off": round(off, 2),
        "observe_fps_on": round(on, 2),
        "observe_ratio": round(on / off, 3) if off else None,
        "observe_runs": runs,
        # CPU time of every process of the rig per output frame (nodes + launcher): what a busy machine cannot skew
        "observe_cpu_ms_off": round(cpu_off, 2),
        "observe_cpu_ms_on": round(cpu_on, 2),
        "observe_cpu_ratio": round(cpu_off / cpu_on, 3) if cpu_on else None,
        "observe_cpu_runs": cpu,
        "observe_config": str(config) if config else "synthetic rig",
    }


def sweep(engine: str, scale: float, frames: int, options: dict | None = None) -> list[dict]:
    """Engine cost at every size of SWEEP_SIZES (cost should grow linearly in pixels)."""
    return [bench_engine(engine, size, scale, frames, options) for size in SWEEP_SIZES]


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def format_result(r: dict) -> str:
    """One human-readable block for an engine-only (and optional end-to-end) result."""
    period = r.get("period", 1)
    refs = "new reference every frame" if period == 1 else f"a reference every {period} frames"
    lines = [
        f"engine {r['engine']} {r['size']} x{r['scale']:g}  ({r['frames']} frames, stream path, {refs})",
        f"  engine-only   {r['fps']:.1f} fps   p50 {r['p50_ms']:.1f} ms   p99 {r['p99_ms']:.1f} ms   "
        f"cpu {r['cpu_ms']:.1f} ms/frame ({_num(r['cpu_fps'])} fps of CPU time)   peak RSS {r['peak_rss_mb']:.0f} MiB",
        f"  machine       {r['cpus']} cpus, load average {r['load_avg_1m']} at start, "
        f"OpenCV threads {r['opencv_threads']}",
    ]
    if "e2e_fps" in r:
        e2e = r["e2e_fps"]
        ratio = "—" if not e2e else f"{e2e / r['fps']:.2f}"
        lines.append(
            f"  end-to-end    {_num(e2e)} fps ({r['pipeline_mode']})   capture->encode p50 "
            f"{_num(r['latency_p50_ms'])} ms   p99 {_num(r['latency_p99_ms'])} ms   frames out {r['frames_out']}"
        )
        lines.append(f"  ratio         end-to-end / engine-only = {ratio}")
        if "observe_ratio" in r:
            lines.append(
                f"  observability end-to-end {r['observe_fps_off']:.1f} fps off, {r['observe_fps_on']:.1f} fps with "
                f"metrics, preview and trace on ({r['observe_config']}, median of {len(r['observe_runs']['on'])}): "
                f"ratio {r['observe_ratio']}"
            )
            lines.append(
                f"  observe CPU   {r['observe_cpu_ms_off']:.1f} ms per output frame off, "
                f"{r['observe_cpu_ms_on']:.1f} ms on (all rig processes): ratio off/on {r['observe_cpu_ratio']}"
            )
        per_node = r.get("cpu_ms_per_frame") or {}
        if per_node:
            parts = "  ".join(f"{name} {ms:.1f}" for name, ms in per_node.items())
            lines.append(f"  pipeline CPU  ms per output frame: {parts}  (total {sum(per_node.values()):.1f})")
    return "\n".join(lines)


def sweep_table(rows: list[dict]) -> str:
    """Markdown table of cost versus pixels, with the spread of ms per megapixel."""
    lines = ["| size | MP | fps | p50 ms | p99 ms | cpu ms | ms/MP |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        w, h = parse_size(r["size"])
        lines.append(
            f"| {r['size']} | {w * h / 1e6:.3f} | {r['fps']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['cpu_ms']:.2f} | {r['ms_per_mp']:.1f} |"
        )
    per_mp = [r["ms_per_mp"] for r in rows]
    lines.append(f"\nms/MP spread (max/min): {max(per_mp) / min(per_mp):.2f}x")
    return "\n".join(lines)


def print_result(result: dict | list[dict], out: TextIO | None = None) -> None:
    """Print a single result or a sweep table (to stdout by default)."""
    text = sweep_table(result) if isinstance(result, list) else format_result(result)
    print(text, file=out if out is not None else sys.stdout)
