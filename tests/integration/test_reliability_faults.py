"""Faults with real processes and real ZeroMQ sockets: killed nodes, signals, bad and dropping sources (DESIGN §9).

Each test prints the figure it measures (run with ``-s`` to see it) and records it as a junit property.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import zmq
from conftest import moving_frames, write_video
from proc_helpers import pids_with_arg

from streamfuse.config import dump_config, synthetic_rig_config
from streamfuse.config.schema import CameraConfig, OutputConfig, SyncConfig
from streamfuse.wire import encode_frame

pytestmark = pytest.mark.slow
STREAMFUSE = [sys.executable, "-m", "streamfuse"]


def write_rig(tmp_path: Path, video: Path, mode: str = "live", **sections) -> Path:
    """The synthetic two-camera rig (160x120, cheap naive engine) with some sections replaced, as a YAML file."""
    cfg = synthetic_rig_config((160, 120), engine="naive", mode=mode, output=str(tmp_path / "out.mp4"), video=video)
    for name, value in sections.items():
        setattr(cfg, name, value)
    path = tmp_path / "rig.yaml"
    dump_config(cfg, path)
    return path


def node_pids(config: Path, role: str, name: str | None = None) -> list[int]:
    """Pids of the node processes of a rig (by their command line)."""
    found = []
    for pid in pids_with_arg(str(config)):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        is_node = "streamfuse.nodes" in args or "node" in args  # spawned by `run`, or `streamfuse node ...`
        if is_node and (role == "node" or role in args) and (name is None or name in args):
            found.append(pid)
    return found


def finalized_mp4(data: bytes) -> bool:
    """A fragmented MP4 ends with its closing index: an ``mfra`` box whose last child ``mfro`` gives its size."""
    size = int.from_bytes(data[-4:], "big")
    return data[-16:-8] == b"\x00\x00\x00\x10mfro" and 16 < size <= len(data) and data[-size + 4 : -size + 8] == b"mfra"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def figure(record_property, name: str, value) -> None:
    print(f"\nFIGURE {name} = {value}")
    record_property(name, value)


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_video(tmp_path / "scene.mp4", moving_frames(40, 120, 160, speed=3))


def decode_all(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


# --- supervision: a killed capture node is restarted and rejoined --------------------------------------


def test_killed_capture_node_is_restarted_and_rejoined(tmp_path: Path, scene: Path, record_property) -> None:
    config = write_rig(tmp_path, scene, sync=SyncConfig(max_reference_age_ms=300, fallback="grey"))
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        run = subprocess.Popen(
            [*STREAMFUSE, "run", str(config), "--json", str(tmp_path / "s.json")], stdout=log, stderr=log, text=True
        )
        try:
            colour = wait_for(lambda: node_pids(config, "capture", "color"), 60, "the colour capture node")[0]
            wait_for(lambda: (tmp_path / "out.mp4").exists(), 60, "the first recorded frames")
            time.sleep(1.0)
            os.kill(colour, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(lambda: "rejoined" in log_path.read_text(), 60, "the fusion node to rejoin the colour stream")
            rejoin_wall_s = time.monotonic() - killed
            time.sleep(1.0)  # colour frames flow again
            run.send_signal(signal.SIGINT)
            assert run.wait(60) == 0, log_path.read_text()[-3000:]
        finally:
            if run.poll() is None:
                run.kill()
    summary = json.loads((tmp_path / "s.json").read_text())
    text = log_path.read_text()
    assert summary["restarts"] == {"capture:color": 1}
    assert "node capture:color died (exit status -9); restarting it in 0.5 s" in text
    assert all(code == 0 for code in summary["exit_codes"].values())  # the restarted node stopped cleanly too
    assert summary["links"]["color"]["restarts"] == 1 and summary["seq"]["restarts_2"] == 1
    (rejoin,) = summary["rejoins"]
    assert rejoin["link"] == "color" and rejoin["gap_ms"] > 500  # at least the restart delay without colour
    assert rejoin["after_restart_ms"] is not None and 0 < rejoin["after_restart_ms"] < rejoin["gap_ms"]
    assert summary["sync"]["fallback_grey"] > 0  # the fusion node kept emitting its configured fallback meanwhile
    assert summary["sync"]["fresh"] + summary["sync"].get("reused", 0) > 0
    assert "faults         restarts capture:color 1, rejoined color after" in text
    assert len(decode_all(tmp_path / "out.mp4")) == summary["frames_out"] > 0
    assert node_pids(config, "capture") == node_pids(config, "fuse") == []
    figure(record_property, "capture_gap_ms", rejoin["gap_ms"])
    figure(record_property, "rejoin_after_restart_ms", rejoin["after_restart_ms"])
    figure(record_property, "kill_to_rejoin_s", round(rejoin_wall_s, 2))


# --- kill -9 of the encoder: the file is playable and loses about a second at most ----------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_killed_encoder_leaves_a_playable_file(tmp_path: Path, scene: Path, suffix: str, record_property) -> None:
    out = tmp_path / f"out{suffix}"
    config = write_rig(tmp_path, scene, outputs=[OutputConfig(str(out))])  # live recording, 1 s keyframe interval
    run_dir = tmp_path / "links"
    encoder = subprocess.Popen(
        [*STREAMFUSE, "node", "encode", "--config", str(config), "--run-dir", str(run_dir), "--report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 2)  # like a live link: if the encoder lags, the driver waits (few frames in flight)
    push.setsockopt(zmq.SNDTIMEO, 10_000)  # ...but never forever
    push.connect(f"ipc://{run_dir}/output.sock")
    fps, total = 30, 89  # killed 2.97 s in, just before the keyframe at 3 s: the worst case of a keyframe GOP
    frames = moving_frames(30, 120, 160, speed=2)
    try:
        wait_for(lambda: (run_dir / "output.sock").exists(), 60, "the encoder to bind")
        start = time.monotonic()
        for seq in range(total):  # paced like a 30 fps camera
            header, frame = encode_frame(frames[seq % 30], 0, seq, round(seq * 1e9 / fps), time.time_ns())
            push.send_multipart([header, frame])
            time.sleep(max(0.0, start + (seq + 1) / fps - time.monotonic()))
        encoder.kill()
        encoder.wait(10)
    finally:
        push.close(linger=0)
        ctx.term()
        if encoder.poll() is None:
            encoder.kill()
    decoded = decode_all(out)  # raises if the file is not playable
    indices = [round(float(f.pts * f.time_base) * fps) for f in decoded]
    assert indices == list(range(len(decoded)))  # everything that was kept decodes, in order, from the start
    lost_s = (total - len(decoded)) / fps
    assert lost_s <= 1.0  # DESIGN §4: at most about a second
    figure(record_property, f"encoder_kill_seconds_lost{suffix.replace('.', '_')}", round(lost_s, 3))


# --- SIGINT and SIGTERM to `streamfuse run` --------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_finalizes_every_output_and_leaves_no_process(tmp_path: Path, scene: Path, sig) -> None:
    outputs = [OutputConfig(str(tmp_path / "out.mp4")), OutputConfig(str(tmp_path / "sbs.mkv"), side_by_side=True)]
    config = write_rig(tmp_path, scene, outputs=outputs)
    run = subprocess.Popen(
        [*STREAMFUSE, "run", str(config), "--json", str(tmp_path / "s.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (tmp_path / "out.mp4").exists(), 60, "the first recorded frames")
        children = node_pids(config, "node")
        assert len(children) == 4
        time.sleep(1.5)
        run.send_signal(sig)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["stopped_by"] == sig.name
    assert set(summary["exit_codes"]) == {"encode", "fuse", "capture:mono", "capture:color"}
    assert all(code == 0 for code in summary["exit_codes"].values())
    mp4, mkv = (tmp_path / "out.mp4").read_bytes(), (tmp_path / "sbs.mkv").read_bytes()
    assert finalized_mp4(mp4)  # the fragmented MP4 got its closing index: finalized
    assert b"\x1c\x53\xbb\x6b" in mkv  # the Matroska file got its cues: finalized
    assert len(decode_all(tmp_path / "out.mp4")) == summary["frames_out"] > 0
    side_by_side = len(decode_all(tmp_path / "sbs.mkv"))
    assert side_by_side > 0 and abs(side_by_side - summary["frames_out"]) <= summary["fuse_output_dropped"]
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)  # every child exited
    assert node_pids(config, "node") == []  # and no orphan is left


def test_killed_launcher_leaves_no_orphan_and_a_finalized_file(tmp_path: Path, scene: Path) -> None:
    config = write_rig(tmp_path, scene)
    run = subprocess.Popen([*STREAMFUSE, "run", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (tmp_path / "out.mp4").exists(), 60, "the first recorded frames")
        children = node_pids(config, "node")
        assert len(children) == 4
        time.sleep(1.0)
        run.kill()  # SIGKILL: the launcher cannot forward anything; its nodes get SIGTERM from the kernel
        run.wait(10)
        wait_for(lambda: node_pids(config, "node") == [], 30, "every node to exit after the launcher died")
    finally:
        if run.poll() is None:
            run.kill()
        for pid in node_pids(config, "node"):
            os.kill(pid, signal.SIGKILL)
    assert finalized_mp4((tmp_path / "out.mp4").read_bytes())  # the encoder still finalized its file
    assert len(decode_all(tmp_path / "out.mp4")) > 0


# --- sources: clear errors, and live reconnect with backoff ----------------------------------------------


def test_corrupt_truncated_and_absent_sources_fail_with_one_line(tmp_path: Path, scene: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"\0junk" * 1000)
    data = scene.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    cases = {
        "junk.mp4": CameraConfig("mono", "file", path=str(tmp_path / "junk.mp4")),
        "cut.mp4": CameraConfig("mono", "file", path=str(tmp_path / "cut.mp4")),
        "'/dev/video97' could not be opened": CameraConfig("mono", "v4l2", device="/dev/video97"),
    }
    for expected, camera in cases.items():
        cameras = {"mono": camera, "color": CameraConfig("color", "file", path=str(scene))}
        config = write_rig(tmp_path, scene, mode="offline", cameras=cameras)
        proc = subprocess.run(
            [*STREAMFUSE, "node", "capture", "--name", "mono", "--config", str(config), "--run-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and expected in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr


class _FlakyStream(http.server.SimpleHTTPRequestHandler):
    """Serves an MPEG-TS clip paced at about real time, then ends the connection (a stream that drops).
    The second connection stalls halfway: it stays open but sends nothing more (an adapter that hangs)."""

    connections: list[float] = []
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        cls = type(self)
        cls.connections.append(time.monotonic())
        stall = len(cls.connections) == 2
        data = Path(self.directory, "clip.ts").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        step = len(data) // 20
        try:
            for i in range(0, len(data), step):
                if stall and i >= len(data) // 2:
                    cls.release.wait(30)
                    return
                self.wfile.write(data[i : i + step])
                self.wfile.flush()
                time.sleep(0.04)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the capture node was stopped mid-clip

    def log_message(self, *args) -> None:
        pass


def write_ts(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_network_camera_that_is_absent_then_drops_is_reconnected_with_backoff(tmp_path: Path, scene: Path) -> None:
    """A network colour camera (an HTTP MPEG-TS stream, the same PyAV path as RTSP) that is absent at first, then
    comes up, drops after a clip, stalls, and comes back: the capture node retries with growing delays, gives up on
    the stalled read after its timeout, and never crashes."""
    served = tmp_path / "www"
    served.mkdir()
    write_ts(served / "clip.ts", moving_frames(30, 120, 160))
    with socket.socket() as s:  # a free port, with nothing listening on it yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cameras = {
        "mono": CameraConfig("mono", "synthetic"),
        "color": CameraConfig("color", "rtsp", url=f"http://127.0.0.1:{port}/clip.ts"),
    }
    config = write_rig(tmp_path, scene, cameras=cameras)
    run_dir = tmp_path / "links"
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    run_dir.mkdir()
    pull.bind(f"ipc://{run_dir}/color.sock")
    received: list[float] = []
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            if pull.poll(100):
                parts = pull.recv_multipart()
                if len(parts[1]):
                    received.append(time.monotonic())

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    _FlakyStream.connections = []
    _FlakyStream.release.clear()
    server = None
    log_path = tmp_path / "capture.log"
    log = log_path.open("w")
    capture = subprocess.Popen(
        [*STREAMFUSE, "node", "capture", "--name", "color", "--config", str(config), "--run-dir", str(run_dir)]
        + ["--report"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:  # absent: attempts 0.5 s, 1 s and 2 s apart
        wait_for(lambda: "retrying in 2.0 s" in log_path.read_text(), 60, "three attempts to open the stream")
        assert capture.poll() is None and not received
        handler = functools.partial(_FlakyStream, directory=str(served))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        wait_for(lambda: len(_FlakyStream.connections) >= 3, 60, "a reconnect after the stream stalled")
        time.sleep(0.5)
        assert capture.poll() is None
        capture.send_signal(signal.SIGINT)
        out, _ = capture.communicate(timeout=30)
    finally:
        log.close()
        done.set()
        _FlakyStream.release.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        if capture.poll() is None:
            capture.kill()
        reader.join(2)
        pull.close(linger=0)
        ctx.term()
    err = log_path.read_text()
    assert capture.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["reconnect_attempts"] >= 3 and summary["source_failures"] >= 2
    delays = [line.rsplit("retrying in ", 1)[1] for line in err.splitlines() if "retrying in" in line]
    assert delays[:3] == ["0.5 s", "1.0 s", "2.0 s"]  # exponential backoff while the camera is absent
    assert "could not be opened" in err and "Traceback" not in err
    stalled, third = _FlakyStream.connections[1:3]
    assert third - stalled > 4.0  # the stalled read timed out (5 s) rather than hanging the node forever
    assert f"stream 'http://127.0.0.1:{port}/clip.ts' stalled: no data for 5 s; reconnecting in 0.5 s" in err
    assert any(t > third for t in received)  # frames flowed again after the stream stalled and came back
    assert summary["sent"] >= 30
