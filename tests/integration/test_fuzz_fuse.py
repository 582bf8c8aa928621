"""A seeded fuzz run against a live fusion node process over real ZeroMQ sockets (DESIGN §4, §9 bad input).

More than 10,000 malformed or mutated multipart messages: every one is dropped and counted under the reason the
test expects, the node never crashes, and it still colorizes good frames afterwards.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import zmq
from conftest import moving_frames, write_video

from streamfuse.config import dump_config, synthetic_rig_config
from streamfuse.config.schema import LimitsConfig
from streamfuse.wire import FLAG_EOS, HEADER, MAGIC, VERSION, PixelFormat, decode_header, encode_frame

pytestmark = pytest.mark.slow

SEED = 20261122
BAD_MESSAGES = 10_500
MAX_SIDE, MAX_PIXELS = 512, 256 * 256  # the rig's limits; the socket accepts messages up to MAX_PIXELS*3 + 1 KiB
MONO, COLOUR = 1, 2  # wire stream ids of the rig's cameras (their order in the config)
GRAY8, GRAY16, RGB24 = int(PixelFormat.GRAY8), int(PixelFormat.GRAY16), int(PixelFormat.RGB24)


def header(pixfmt=GRAY8, w=40, h=32, stream=MONO, seq=0, flags=0, magic=MAGIC, version=VERSION, ts=0) -> bytes:
    return HEADER.pack(magic, version, pixfmt, flags, 0, stream, seq, ts, 0, w, h)


def nbytes(pixfmt: int, w: int, h: int) -> int:
    return PixelFormat(pixfmt).nbytes(w, h)


class Fuzzer:
    """Generates (link, parts, expected reject reason) messages; good frames keep per-stream seq state."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.seq = {MONO: 100, COLOUR: 100}  # next good seq; stale ones are drawn from [16, last]

    def noise(self, n: int) -> bytes:
        return self.rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    def link(self) -> tuple[str, int]:
        return ("mono", MONO) if self.rng.random() < 0.5 else ("color", COLOUR)

    def good(self, link: str) -> list:
        stream = MONO if link == "mono" else COLOUR
        seq = self.seq[stream]
        self.seq[stream] += 1
        frame = np.full((32, 40), seq % 256, np.uint8) if link == "mono" else np.full((8, 10, 3), 90, np.uint8)
        return list(encode_frame(frame, stream, seq, seq * 33_000_000))

    def bad(self) -> tuple[str, list, str]:
        rng = self.rng
        link, stream = self.link()
        fmt = GRAY8 if link == "mono" else RGB24
        kind = int(rng.integers(0, 13))
        if kind == 0:  # wrong part count
            return (
                link,
                [self.noise(int(rng.integers(0, 64))) for _ in range(int(rng.choice([1, 3, 4, 7])))],
                ("bad_part_count"),
            )
        if kind == 1:  # truncated or padded header
            size = int(rng.choice([int(rng.integers(0, HEADER.size)), int(rng.integers(HEADER.size + 1, 200))]))
            return link, [self.noise(size), self.noise(int(rng.integers(0, 64)))], "bad_header_size"
        if kind == 2:  # random bytes where the magic should be
            magic = self.noise(2)
            magic = b"XF" if magic == MAGIC else magic
            return link, [magic + self.noise(HEADER.size - 2), self.noise(16)], "bad_magic"
        if kind == 3:
            version = int(rng.integers(0, 256))
            version = 0 if version == VERSION else version
            return link, [header(fmt, stream=stream, version=version), self.noise(16)], "bad_version"
        if kind == 4:  # unknown pixel format (i.e. dtype) code
            code = int(rng.choice([0, *range(4, 256)]))
            return link, [header(code, stream=stream), self.noise(16)], "bad_pixfmt"
        if kind == 5:
            flags = int(rng.integers(2, 256))
            return link, [header(fmt, stream=stream, flags=flags), self.noise(16)], "bad_flags"
        if kind == 6:  # empty frame
            w, h = (0, int(rng.integers(0, 100))) if rng.random() < 0.5 else (int(rng.integers(1, 100)), 0)
            return link, [header(fmt, w, h, stream=stream), b""], "bad_dims"
        if kind == 7:  # huge dims (side or area over the limit), with a small buffer: refused before allocating
            if rng.random() < 0.5:
                w, h = int(rng.integers(MAX_SIDE + 1, 2**32)), int(rng.integers(1, 2**32))
            else:
                w = h = int(rng.integers(257, MAX_SIDE + 1))
            w, h = (w, h) if rng.random() < 0.5 else (h, w)
            return link, [header(fmt, w, h, stream=stream), self.noise(int(rng.integers(0, 256)))], "oversized"
        if kind == 8:  # buffer size does not match the header (also GRAY16 and the end marker with a payload)
            if rng.random() < 0.2:
                return link, [header(GRAY8, 0, 0, stream=stream, flags=FLAG_EOS), self.noise(8)], "bad_size"
            fmt = GRAY16 if link == "mono" and rng.random() < 0.5 else fmt
            w, h = int(rng.integers(1, 65)), int(rng.integers(1, 65))
            size = nbytes(fmt, w, h) + int(rng.choice([-1, 1])) * int(rng.integers(1, 200))
            return link, [header(fmt, w, h, stream=stream), self.noise(max(0, size))], "bad_size"
        if kind == 9:  # a stream id that does not belong on this link (frames and end markers)
            wrong = int(rng.integers(0, 65536))
            wrong = 77 if wrong in ((MONO, MONO | 0x8000) if link == "mono" else (COLOUR,)) else wrong
            if rng.random() < 0.2:
                return link, [header(GRAY8, 0, 0, stream=wrong, flags=FLAG_EOS), b""], "bad_stream"
            return link, [header(fmt, 4, 4, stream=wrong), bytes(nbytes(fmt, 4, 4))], "bad_stream"
        if kind == 10:  # valid frame, wrong pixel format for the link (RGB on mono, mono on colour)
            fmt = RGB24 if link == "mono" else int(rng.choice([GRAY8, GRAY16]))
            return link, [header(fmt, 4, 4, stream=stream), bytes(nbytes(fmt, 4, 4))], "bad_pixfmt"
        # stale or duplicate seq of a valid frame (kinds 11, 12)
        last = self.seq[stream] - 1
        seq = last if kind == 11 else int(rng.integers(16, last + 1))
        w, h = (40, 32) if link == "mono" else (10, 8)
        return link, [header(fmt, w, h, stream=stream, seq=seq), bytes(nbytes(fmt, w, h))], "stale_seq"


class Output:
    """PULL socket bound on the fusion node's output endpoint; keeps every fused frame it receives."""

    def __init__(self, ctx: zmq.Context, url: str) -> None:
        self.sock = ctx.socket(zmq.PULL)
        self.sock.bind(url)
        self.frames: list[tuple[bytes, bytes]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            if self.sock.poll(50):
                h, buf = self.sock.recv_multipart()
                if len(buf):
                    self.frames.append((h, buf))

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        self.sock.close(linger=0)


def write_rig(tmp_path: Path) -> Path:
    video = write_video(tmp_path / "scene.mp4", moving_frames(8))
    cfg = synthetic_rig_config(
        (160, 120), engine="naive", mode="live", output=str(tmp_path / "unused.mp4"), video=video
    )
    cfg.limits = LimitsConfig(max_side=MAX_SIDE, max_pixels=MAX_PIXELS)
    path = tmp_path / "rig.yaml"
    dump_config(cfg, path)
    return path


def test_fuzzed_messages_are_all_rejected_by_reason_and_the_node_survives(tmp_path: Path, record_property) -> None:
    run_dir = tmp_path / "links"
    run_dir.mkdir()
    ctx = zmq.Context()
    output = Output(ctx, f"ipc://{run_dir}/output.sock")
    node = subprocess.Popen(
        [sys.executable, "-m", "streamfuse", "node", "fuse", "--config", str(write_rig(tmp_path))]
        + ["--run-dir", str(run_dir), "--report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    links = {name: ctx.socket(zmq.PUSH) for name in ("mono", "color")}
    for name, sock in links.items():
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.SNDTIMEO, 10_000)  # a send that cannot complete fails instead of hanging
        sock.connect(f"ipc://{run_dir}/{name}.sock")
    fuzz = Fuzzer(SEED)
    expected: Counter = Counter()
    good_mono = 0
    try:
        links["mono"].send_multipart(fuzz.good("mono"))  # the node is up once this one comes out fused
        good_mono += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not output.frames:
            time.sleep(0.05)
        started = time.monotonic()
        for i in range(BAD_MESSAGES):
            if i % 50 == 0:  # good frames in between keep the seq state moving and the engine working
                links["color"].send_multipart(fuzz.good("color"))
                links["mono"].send_multipart(fuzz.good("mono"))
                good_mono += 1
            link, parts, reason = fuzz.bad()
            links[link].send_multipart(parts)
            expected[reason] += 1
        fuzz_s = time.monotonic() - started
        assert node.poll() is None, node.stderr.read()[-3000:]  # zero crashes

        # A message above the socket's MAXMSGSIZE never reaches the node: ZeroMQ drops that connection first.
        huge = ctx.socket(zmq.PUSH)
        huge.setsockopt(zmq.SNDTIMEO, 10_000)
        huge.connect(f"ipc://{run_dir}/mono.sock")
        huge.send_multipart([header(GRAY8, 512, 512), bytes(MAX_PIXELS * 3 + 4096)])
        huge.close(linger=500)

        # Afterwards good frames are still colorized: a red reference turns the mono frames red.
        red = np.full((8, 10, 3), (220, 40, 40), np.uint8)
        seq = fuzz.seq[COLOUR]
        links["color"].send_multipart(list(encode_frame(red, COLOUR, seq, seq * 33_000_000 + 10**12)))
        time.sleep(0.3)
        for _ in range(5):
            seq = fuzz.seq[MONO]
            fuzz.seq[MONO] += 1
            mono = np.full((32, 40), 120, np.uint8)
            links["mono"].send_multipart(list(encode_frame(mono, MONO, seq, seq * 33_000_000 + 10**12 + 10**6)))
            good_mono += 1
            time.sleep(0.1)
        deadline, seen = time.monotonic() + 20, -1  # until the outputs settle
        while time.monotonic() < deadline and len(output.frames) != seen:
            seen = len(output.frames)
            time.sleep(1.0)
        assert node.poll() is None
        node.send_signal(signal.SIGINT)
        out, err = node.communicate(timeout=30)
    finally:
        if node.poll() is None:
            node.kill()
        for sock in links.values():
            sock.close(linger=0)
        output.close()
        ctx.term()
    assert node.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert sum(expected.values()) == BAD_MESSAGES >= 10_000
    assert summary["rejected"] == dict(expected)  # every bad message counted once, under the expected reason
    assert summary["frames"] == good_mono  # every good mono frame was fused, none lost among the bad ones
    assert set(summary["seq"]) == {"stale_1", "stale_2"}  # no gap or restart: only the stale ones were refused
    assert summary["seq"]["stale_1"] + summary["seq"]["stale_2"] == expected["stale_seq"]
    assert len(output.frames) + summary.get("output_dropped", 0) == good_mono
    assert decode_header(output.frames[-1][0]).seq >= good_mono - 5  # one of the frames sent after the fuzz
    last = np.frombuffer(output.frames[-1][1], np.uint8).reshape(32, 40, 3).astype(int)
    assert last[..., 0].mean() > last[..., 2].mean() + 40  # colorized with the red reference
    assert "Traceback" not in err and "dropped a bad message" in err
    rate = BAD_MESSAGES / fuzz_s
    print(f"\nFIGURE fuzz: {BAD_MESSAGES} bad messages (seed {SEED}), crashes 0, rejected {summary['rejected']}")
    print(f"FIGURE fuzz rate: {rate:.0f} messages/s; good frames fused {good_mono}, output {len(output.frames)}")
    record_property("fuzz_messages", BAD_MESSAGES)
    record_property("fuzz_crashes", 0)
