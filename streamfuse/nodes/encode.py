"""Encoder node: receives fused frames and records each configured output; measures capture->encode latency."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np

from streamfuse.config.schema import RigConfig
from streamfuse.faults import ENCODE_DELAY_ENV, encode_delay_s
from streamfuse.nodes.common import Reporter, StopFlag, max_message_bytes, percentile, wire_limits
from streamfuse.transport import DEFAULTS, Inbox, ZmqContext, ZmqInbox, endpoint_for
from streamfuse.video_writer import VideoWriter
from streamfuse.wire import PixelFormat, WireError, decode_frame

log = logging.getLogger("streamfuse.encode")


class EncodeNode:
    """Writes stream k of the output link to ``cfg.outputs[k]``; stops when every output saw its end marker."""

    def __init__(
        self, cfg: RigConfig, inbox: Inbox, stop: StopFlag, reporter: Reporter | None = None, delay_s: float = 0.0
    ) -> None:
        self.cfg = cfg
        self.delay_s = delay_s  # fault-injection hook: a deliberately slow encoder (streamfuse.faults)
        self.inbox = inbox
        self.stop = stop
        self.reporter = reporter or Reporter("encode", enabled=False)
        fps = cfg.cameras[cfg.mono_camera].fps
        live = cfg.mode == "live"
        self.writers = [VideoWriter(out, fps, live) for out in cfg.outputs]
        self.done = [False] * len(self.writers)
        self.limits = wire_limits(cfg)
        self.rejects: Counter = Counter()
        self.latency_ms: list[float] = []
        self.last_seq: dict[int, int] = {}
        self.gaps = 0

    def handle(self, parts: list) -> None:
        try:
            header, frame = decode_frame(parts, self.limits)
        except WireError as exc:
            self.rejects[exc.reason] += 1
            log.warning("dropped a bad message: %s", exc)
            return
        if header.stream >= len(self.writers) or (not header.eos and header.pixfmt is not PixelFormat.RGB24):
            self.rejects["bad_stream"] += 1
            return
        if header.eos:
            self.done[header.stream] = True
            return
        last = self.last_seq.get(header.stream)
        if last is not None and header.seq > last + 1:
            self.gaps += header.seq - last - 1
        self.last_seq[header.stream] = header.seq
        if self.delay_s:
            time.sleep(self.delay_s)
        self.writers[header.stream].write(frame, header.ts_ns)
        if header.stream == 0:
            if header.wall_ns:
                self.latency_ms.append((time.time_ns() - header.wall_ns) / 1e6)
            self.reporter.frame({"latency_ms": round(self.latency_ms[-1], 1) if self.latency_ms else None})

    def run(self) -> dict:
        """Record until every output got its end marker or a stop is requested; always finalize the files."""
        try:
            while not self.stop() and not all(self.done):
                msg = self.inbox.recv(DEFAULTS.poll_ms)
                if msg is not None:
                    self.handle(msg[1])
            if self.stop():  # drain what already arrived before finalizing
                while (msg := self.inbox.recv(0)) is not None:
                    self.handle(msg[1])
        finally:
            for writer in self.writers:
                writer.close()
        lat = self.latency_ms
        summary = {
            "frames": [w.frames for w in self.writers],
            "outputs": [str(w.path) for w in self.writers],
            "fps": self.reporter.fps(),
            "latency_ms_p50": percentile(lat, 50),
            "latency_ms_p99": percentile(lat, 99),
            "latency_ms_max": float(np.max(lat)) if lat else None,
            "gaps": self.gaps,
            "rejected": dict(self.rejects),
        }
        self.reporter.emit("summary", **summary)
        return summary


def run_encode_node(cfg: RigConfig, run_dir: str | Path, report: bool = True) -> dict:
    """Run the encoder node with real ZeroMQ sockets until done (the `streamfuse node encode` command)."""
    stop = StopFlag().install()
    delay_s = encode_delay_s()
    if delay_s:
        log.warning("fault hook %s: every frame is delayed by %.0f ms", ENCODE_DELAY_ENV, delay_s * 1000)
    zctx = ZmqContext()
    inbox = ZmqInbox(
        zctx, {"output": endpoint_for(cfg, "output", run_dir)}, cfg.mode == "live", max_message_bytes(cfg) * 2
    )
    try:
        return EncodeNode(cfg, inbox, stop, Reporter("encode", enabled=report), delay_s).run()
    finally:
        inbox.close()
        zctx.close()
