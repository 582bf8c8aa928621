"""A deliberately slow encoder (the STREAMFUSE_FAULT_ENCODE_DELAY_MS test hook) behind a real pipeline.

Live mode: memory stays bounded (VmRSS of every process sampled from /proc) and stale frames are dropped and
counted. Offline mode under the same slowness: nothing is dropped, frames in == frames out (backpressure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from conftest import moving_frames, write_video
from proc_helpers import pids_with_arg, vm_rss_mb

from streamfuse.config import dump_config, synthetic_rig_config
from streamfuse.faults import ENCODE_DELAY_ENV

pytestmark = pytest.mark.slow
DELAY_MS = 150  # the encoder manages about 6 fps of a 30 fps camera


def write_rig(tmp_path: Path, mode: str) -> Path:
    video = write_video(tmp_path / "scene.mp4", moving_frames(60, 240, 320, speed=2))
    output = str(tmp_path / "out.mp4")
    cfg = synthetic_rig_config((320, 240), engine="naive", mode=mode, output=output, video=video, loop=mode == "live")
    path = tmp_path / "rig.yaml"
    dump_config(cfg, path)
    return path


def run_slow(config: Path, args: list[str], sample: bool) -> tuple[dict, dict[str, list[tuple[float, float]]]]:
    """Run the rig with the slow encoder; returns the run summary and RSS samples (t, MiB) per process."""
    env = {**os.environ, ENCODE_DELAY_ENV: str(DELAY_MS)}
    summary_path = config.parent / "s.json"
    run = subprocess.Popen(
        [sys.executable, "-m", "streamfuse", "run", str(config), "--json", str(summary_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    rss: dict[str, list[tuple[float, float]]] = {}
    start = time.monotonic()
    try:
        while sample and run.poll() is None:
            for pid in [run.pid, *pids_with_arg(str(config))]:
                try:
                    args_of = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                except OSError:
                    continue
                if pid != run.pid and "streamfuse.nodes" not in args_of and "node" not in args_of:
                    continue  # a child between fork and exec still shows the launcher's command line
                marker = "streamfuse.nodes" if "streamfuse.nodes" in args_of else "node"
                name = "launcher" if pid == run.pid else " ".join(args_of[args_of.index(marker) + 1 :][:1])
                if "--name" in args_of:
                    name += ":" + args_of[args_of.index("--name") + 1]
                mb = vm_rss_mb(pid)
                if mb is not None:
                    rss.setdefault(name, []).append((time.monotonic() - start, mb))
            time.sleep(0.2)
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-3000:]
    assert f"fault hook {ENCODE_DELAY_ENV}: every frame is delayed by {DELAY_MS} ms" in err
    return json.loads(summary_path.read_text()), rss


def test_live_slow_consumer_keeps_memory_bounded_and_counts_drops(tmp_path: Path, record_property) -> None:
    summary, rss = run_slow(write_rig(tmp_path, "live"), ["--duration", "10"], sample=True)
    assert set(rss) == {"launcher", "encode", "fuse", "capture:mono", "capture:color"}
    peaks, growths = {}, {}
    for name, samples in rss.items():
        values = [mb for t, mb in samples]
        steady = [mb for t, mb in samples if t > 4.0]  # every node is up and the encoder is behind
        assert len(steady) >= 10, f"too few RSS samples of {name}"
        third = len(steady) // 3
        growth = max(steady[-third:]) - max(steady[:third])
        assert growth < 25, f"{name} grew {growth:.0f} MiB under the slow encoder"
        peaks[name], growths[name] = round(max(values), 1), round(growth, 1)
    assert max(peaks.values()) < 1024
    # the slow encoder made the fusion node drop stale results (counted) instead of queueing them
    dropped = summary["fuse_output_dropped"] + summary["fuse_stale_dropped"] + summary["capture_dropped"]
    assert summary["fuse_output_dropped"] > 0
    assert summary["frames_out"] < summary["frames_in"]
    # every mono frame sent is accounted for: recorded, dropped and counted, or in flight when the run stopped
    in_flight = (
        summary["frames_in"] - summary["frames_out"] - summary["fuse_stale_dropped"] - summary["fuse_output_dropped"]
    )
    assert 0 <= in_flight <= 10
    with av.open(summary["outputs"][0]) as container:
        assert sum(1 for _ in container.decode(video=0)) == summary["frames_out"]
    print(f"\nFIGURE live slow encoder ({DELAY_MS} ms/frame): peak RSS MiB {peaks}")
    print(f"FIGURE RSS growth MiB, last third vs first third of the steady state: {growths}")
    print(f"FIGURE frames in {summary['frames_in']} out {summary['frames_out']}, in flight at the stop {in_flight}")
    print(
        f"FIGURE dropped: capture {summary['capture_dropped']} stale mono {summary['fuse_stale_dropped']}"
        f" output {summary['fuse_output_dropped']}"
    )
    record_property("peak_rss_mib", peaks)
    record_property("live_dropped", dropped)


def test_offline_slow_consumer_drops_nothing(tmp_path: Path, record_property) -> None:
    summary, _ = run_slow(write_rig(tmp_path, "offline"), ["--frames", "40"], sample=False)
    assert summary["frames_in"] == summary["frames_out"] == 40
    assert summary["capture_dropped"] == summary["fuse_stale_dropped"] == summary["fuse_output_dropped"] == 0
    with av.open(summary["outputs"][0]) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40
    print(f"\nFIGURE offline slow encoder ({DELAY_MS} ms/frame): frames in 40 out 40, dropped 0")
    record_property("offline_dropped", 0)
