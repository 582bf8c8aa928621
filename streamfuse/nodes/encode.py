"""Encoder node: receives fused frames and records each configured output; measures capture->encode latency."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from streamfuse.config.schema import RigConfig
from streamfuse.faults import ENCODE_DELAY_ENV, encode_delay_s
from streamfuse.nodes import loop
from streamfuse.nodes.common import Reporter, StopFlag, max_message_bytes, percentile, wire_limits
from streamfuse.nodes.ports import Port
from streamfuse.transport import ZmqContext, ZmqInbox, endpoint_for
from streamfuse.video_writer import VideoWriter
from streamfuse.wire import Limits, WireError, decode_frame

log = logging.getLogger("streamfuse.encode")


class Writer(Protocol):
    """Where one output stream goes (``VideoWriter`` in a rig; a list in a test)."""

    path: Path
    frames: int

    def write(self, rgb: np.ndarray, ts_ns: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EncodeParams:
    """What an encoder node needs to know, taken from the rig config once."""

    limits: Limits
    port: Port = Port("output", "fused")
    delay_s: float = 0.0
    """Fault-injection hook: a deliberately slow encoder (streamfuse.faults)."""

    @classmethod
    def from_rig(cls, cfg: RigConfig, delay_s: float = 0.0) -> EncodeParams:
        return cls(wire_limits(cfg), delay_s=delay_s)


def rig_writers(cfg: RigConfig) -> list[VideoWriter]:
    """One video writer per configured output."""
    fps = cfg.cameras[cfg.mono_camera].fps
    return [VideoWriter(out, fps, cfg.mode == "live") for out in cfg.outputs]


class EncodeNode(loop.Operator):
    """Writes stream k of the output link to ``writers[k]``; done when every output saw its end marker."""

    drain_on_stop = True  # what already arrived is recorded before the files are finalized

    def __init__(
        self, params: EncodeParams, writers: list[Writer], stop: StopFlag, reporter: Reporter | None = None
    ) -> None:
        self.params = params
        self.inputs = (params.port,)
        self.writers = writers
        self.stop = stop
        self.reporter = reporter or Reporter("encode", enabled=False)
        self.finished = [False] * len(self.writers)
        self.rejects: Counter = Counter()
        self.latency_ms: list[float] = []
        self.last_seq: dict[int, int] = {}
        self.gaps = 0

    @property
    def done(self) -> bool:
        return all(self.finished)

    def step(self, msg: loop.Message | None) -> None:
        if msg is not None:
            self.handle(msg[1])

    def handle(self, parts: list) -> None:
        """Validate one message and record it; a bad message is dropped and counted."""
        try:
            header, frame = decode_frame(parts, self.params.limits)
        except WireError as exc:
            self.rejects[exc.reason] += 1
            log.warning("dropped a bad message: %s", exc)
            return
        if header.stream >= len(self.writers) or (not header.eos and not self.params.port.accepts(header.pixfmt)):
            self.rejects["bad_stream"] += 1
            return
        if header.eos:
            self.finished[header.stream] = True
            return
        last = self.last_seq.get(header.stream)
        if last is not None and header.seq > last + 1:
            self.gaps += header.seq - last - 1
        self.last_seq[header.stream] = header.seq
        if self.params.delay_s:
            time.sleep(self.params.delay_s)
        self.writers[header.stream].write(frame, header.ts_ns)
        if header.stream == 0:
            if header.wall_ns:
                self.latency_ms.append((time.time_ns() - header.wall_ns) / 1e6)
            self.reporter.frame({"latency_ms": round(self.latency_ms[-1], 1) if self.latency_ms else None})

    def summary(self) -> dict:
        lat = self.latency_ms
        return {
            "frames": [w.frames for w in self.writers],
            "outputs": [str(w.path) for w in self.writers],
            "fps": self.reporter.fps(),
            "latency_ms_p50": percentile(lat, 50),
            "latency_ms_p99": percentile(lat, 99),
            "latency_ms_max": float(np.max(lat)) if lat else None,
            "gaps": self.gaps,
            "rejected": dict(self.rejects),
        }

    def close(self) -> None:
        """Finalize every file, however the loop ended."""
        for writer in self.writers:
            writer.close()


def run_encode_node(cfg: RigConfig, run_dir: str | Path, report: bool = True) -> dict:
    """Run the encoder node with real ZeroMQ sockets until done (`streamfuse node encode`, and the launcher)."""
    stop = StopFlag().install()
    delay_s = encode_delay_s()
    if delay_s:
        log.warning("fault hook %s: every frame is delayed by %.0f ms", ENCODE_DELAY_ENV, delay_s * 1000)
    params = EncodeParams.from_rig(cfg, delay_s)
    zctx = ZmqContext()
    inbox = ZmqInbox(
        zctx, {"output": endpoint_for(cfg, "output", run_dir)}, cfg.mode == "live", max_message_bytes(cfg) * 2
    )
    try:
        return loop.run(EncodeNode(params, rig_writers(cfg), stop, Reporter("encode", enabled=report)), inbox, stop)
    finally:
        inbox.close()
        zctx.close()
