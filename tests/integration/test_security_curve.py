"""CURVE on tcp links with real processes: keygen, unknown clients refused, open binds refused, no secret in logs."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth
from conftest import moving_frames, write_video

from streamfuse.config import dump_config, synthetic_rig_config
from streamfuse.config.schema import EndpointConfig
from streamfuse.wire import encode_frame

pytestmark = pytest.mark.slow
STREAMFUSE = [sys.executable, "-m", "streamfuse"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(out: Path, name: str) -> str:
    proc = subprocess.run([*STREAMFUSE, "keygen", "--out", str(out), "--name", name], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def write_rig(tmp_path: Path, name: str, mono_endpoint: dict) -> Path:
    video = tmp_path / "scene.mp4"
    if not video.exists():
        write_video(video, moving_frames(40))
    cfg = synthetic_rig_config(
        (160, 120), engine="naive", mode="live", output=str(tmp_path / "unused.mp4"), video=video
    )
    cfg.endpoints = {"mono": EndpointConfig(**mono_endpoint)}
    path = tmp_path / name
    dump_config(cfg, path)
    return path


def node(role: str, config: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*STREAMFUSE, "-v", "node", role, "--config", str(config), "--run-dir", str(run_dir), "--report", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_keygen_writes_curve_key_pairs_with_an_owner_only_secret(tmp_path: Path) -> None:
    printed = keygen(tmp_path / "keys", "server")
    public, secret = zmq.auth.load_certificate(str(tmp_path / "keys" / "server.key_secret"))
    assert len(public) == len(secret) == 40  # z85 Curve25519 keys
    assert zmq.auth.load_certificate(str(tmp_path / "keys" / "server.key")) == (public, None)
    assert stat.S_IMODE((tmp_path / "keys" / "server.key_secret").stat().st_mode) == 0o600
    assert secret.decode() not in printed and "server.key_secret" in printed
    again = subprocess.run([*STREAMFUSE, "keygen", "--out", str(tmp_path / "keys"), "--name", "server"], text=True,
                           capture_output=True)  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr  # never overwrites a key silently
    assert zmq.auth.load_certificate(str(tmp_path / "keys" / "server.key_secret")) == (public, secret)


def test_curve_link_accepts_the_authorized_client_only_and_logs_no_secret(tmp_path: Path) -> None:
    logs = [keygen(tmp_path / "server", "server"), keygen(tmp_path / "clients", "camera")]
    logs.append(keygen(tmp_path / "intruder", "camera"))  # a well-formed key pair the server does not know
    url = f"tcp://127.0.0.1:{free_port()}"
    server = {
        "url": url,
        "server_secret_key": str(tmp_path / "server" / "server.key_secret"),
        "server_public_key": str(tmp_path / "server" / "server.key"),
        "authorized_clients": str(tmp_path / "clients"),
    }
    good = write_rig(
        tmp_path, "good.yaml", {**server, "client_secret_key": str(tmp_path / "clients/camera.key_secret")}
    )
    bad = write_rig(tmp_path, "bad.yaml", {**server, "client_secret_key": str(tmp_path / "intruder/camera.key_secret")})
    run_dir = tmp_path / "links"
    run_dir.mkdir()
    ctx = zmq.Context()
    output = ctx.socket(zmq.PULL)
    output.bind(f"ipc://{run_dir}/output.sock")
    fuse = node("fuse", good, run_dir)
    plain = ctx.socket(zmq.PUSH)  # a client without CURVE at all
    plain.setsockopt(zmq.SNDTIMEO, 5000)  # every blocking socket call in a test has a timeout
    try:
        time.sleep(1.0)
        plain.connect(url)
        for seq in range(5):
            plain.send_multipart(list(encode_frame(np.zeros((120, 160), np.uint8), 1, seq, seq)))
        intruder = node("capture", bad, run_dir, "--name", "mono", "--frames", "30")
        intruder_out, intruder_err = intruder.communicate(timeout=60)
        assert not output.poll(500)  # nothing from the plain client or the intruder reached the fusion node
        assert fuse.poll() is None
        camera = node("capture", good, run_dir, "--name", "mono", "--frames", "30")
        camera_out, camera_err = camera.communicate(timeout=60)
        received = 0
        while output.poll(3000):
            received += len(output.recv_multipart()[1]) > 0
        fuse_out, fuse_err = fuse.communicate(timeout=30)  # it ends with the camera's end-of-stream marker
    finally:
        for proc in (fuse,):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(10)
        plain.close(linger=0)
        output.close(linger=0)
        ctx.term()
    assert intruder.returncode == camera.returncode == fuse.returncode == 0
    intruder_summary = json.loads(intruder_out.strip().splitlines()[-1])
    assert intruder_summary["sent"] == 0 and intruder_summary["dropped"] == 30  # the handshake never completed
    camera_summary = json.loads(camera_out.strip().splitlines()[-1])
    fuse_summary = json.loads(fuse_out.strip().splitlines()[-1])
    assert camera_summary["sent"] >= 10  # all but the frames sent before the handshake completed
    assert fuse_summary["links"]["mono"]["frames"] == camera_summary["sent"]  # every frame sent arrived
    assert fuse_summary["frames"] + fuse_summary.get("stale_mono_dropped", 0) == camera_summary["sent"]
    assert fuse_summary["rejected"] == {}  # refused at the handshake: not one byte reached the decoder
    assert received > 0
    logs += [intruder_out, intruder_err, camera_out, camera_err, fuse_out, fuse_err]
    for folder, name in (("server", "server"), ("clients", "camera"), ("intruder", "camera")):
        _, secret = zmq.auth.load_certificate(str(tmp_path / folder / f"{name}.key_secret"))
        assert not any(secret.decode() in text for text in logs), f"the secret key of {folder} leaked into a log"
    assert "DENIED (CURVE)" in fuse_err  # pyzmq's authenticator refused the intruder (debug-level log)


def test_open_tcp_bind_is_refused_unless_insecure_and_then_warned(tmp_path: Path) -> None:
    run_dir = tmp_path / "links"
    url = f"tcp://0.0.0.0:{free_port()}"
    refused = subprocess.run(
        [*STREAMFUSE, "node", "fuse", "--config", str(write_rig(tmp_path, "open.yaml", {"url": url}))]
        + ["--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert f"refusing to bind {url} without CURVE" in refused.stderr and "Traceback" not in refused.stderr
    insecure = node("fuse", write_rig(tmp_path, "insecure.yaml", {"url": url, "insecure": True}), run_dir)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (run_dir / "color.sock").exists():
            time.sleep(0.1)
        time.sleep(0.5)
        assert insecure.poll() is None  # it runs, as the config asked...
        insecure.send_signal(signal.SIGINT)
        _, err = insecure.communicate(timeout=30)
    finally:
        if insecure.poll() is None:
            insecure.kill()
    assert insecure.returncode == 0
    assert f"binding {url} WITHOUT encryption or authentication (insecure: true)" in err  # ...with a warning
