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
from streamfuse.nodes.ports import Port, output_cameras
from streamfuse.observe.rig import trace_part
from streamfuse.observe.trace import TraceRecorder
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
    cameras: tuple[str, ...] = ()
    """The mono camera (or "mosaic") each output stream records, for per-camera latency."""
    trace: str | None = None
    """This node's trace part file (None: no trace)."""

    @classmethod
    def from_rig(cls, cfg: RigConfig, delay_s: float = 0.0, run_dir: str | Path | None = None) -> EncodeParams:
        trace = trace_part(cfg, run_dir, "encode") if run_dir is not None else None
        return cls(wire_limits(cfg), delay_s=delay_s, cameras=output_cameras(cfg), trace=trace and str(trace))


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
        self.latency_new: dict[str, list[float]] = {}  # per camera, since the last stats line (the metrics histogram)
        self.latency_by_output: list[list[float]] = [[] for _ in writers]
        self.trace = TraceRecorder(params.trace, "encode")

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
        write_ns = time.time_ns()
        self.writers[header.stream].write(frame, header.ts_ns)
        done_ns = time.time_ns()
        camera = self._camera(header.stream)
        if self.trace.enabled:
            self.trace.span("encode", camera, header.ts_ns, write_ns, done_ns, output=header.stream)
        if header.wall_ns:
            latency = (done_ns - header.wall_ns) / 1e6
            self.latency_by_output[header.stream].append(latency)
            self.latency_new.setdefault(camera, []).append(round(latency, 2))
            if header.stream == 0:
                self.latency_ms.append(latency)
        if header.stream == 0:
            self.reporter.frame(self._stats)

    def _camera(self, stream: int) -> str:
        cameras = self.params.cameras
        return cameras[stream] if stream < len(cameras) else f"output{stream}"

    def _stats(self) -> dict:
        """The stats line's fields: the status line's, and the counts and samples the metrics need."""
        latency_new, self.latency_new = self.latency_new, {}
        return {
            "latency_ms": round(self.latency_ms[-1], 1) if self.latency_ms else None,
            "outputs_frames": [w.frames for w in self.writers],
            "latency_ms_new": latency_new,
            "rejects": dict(self.rejects),
        }

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
            "by_output": [
                {"camera": self._camera(i), "frames": w.frames, "latency_ms_p50": percentile(lat_i, 50)}
                for i, (w, lat_i) in enumerate(zip(self.writers, self.latency_by_output, strict=True))
            ],
            **self._stats(),
        }

    def close(self) -> None:
        """Finalize every file, however the loop ended."""
        for writer in self.writers:
            writer.close()
        self.trace.close()


def run_encode_node(cfg: RigConfig, run_dir: str | Path, report: bool = True) -> dict:
    """Run the encoder node with real ZeroMQ sockets until done (`streamfuse node encode`, and the launcher)."""
    stop = StopFlag().install()
    delay_s = encode_delay_s()
    if delay_s:
        log.warning("fault hook %s: every frame is delayed by %.0f ms", ENCODE_DELAY_ENV, delay_s * 1000)
    params = EncodeParams.from_rig(cfg, delay_s, run_dir)
    zctx = ZmqContext()
    inbox = ZmqInbox(
        zctx, {"output": endpoint_for(cfg, "output", run_dir)}, cfg.mode == "live", max_message_bytes(cfg) * 2
    )
    try:
        return loop.run(EncodeNode(params, rig_writers(cfg), stop, Reporter("encode", enabled=report)), inbox, stop)
    finally:
        inbox.close()
        zctx.close()
