"""Capture node: reads one camera and publishes its frames (and the synthetic ground truth) on its output port."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamfuse.config.schema import RigConfig
from streamfuse.errors import SourceError
from streamfuse.nodes import loop
from streamfuse.nodes.common import Reporter, StopFlag, finish_streams
from streamfuse.nodes.ports import TRUTH_STREAM_FLAG, Port, camera_port
from streamfuse.observe.rig import trace_part
from streamfuse.observe.trace import TraceRecorder
from streamfuse.sources import CapturedFrame, Source, open_source
from streamfuse.transport import Sender, ZmqContext, ZmqSender, endpoint_for
from streamfuse.wire import encode_frame

log = logging.getLogger("streamfuse.capture")

SourceFactory = Callable[[], Source]
"""Opens the camera's source (again, after a live failure)."""


@dataclass(frozen=True)
class CaptureParams:
    """What a capture node needs to know, taken from the rig config once."""

    camera: str
    port: Port
    live: bool = False
    """Live: paced to the camera clock, non-blocking sends (a full link drops the frame, counted)."""
    reconnect: bool = False
    """Live sources: reopen with exponential backoff after a failure."""
    epoch_ns: int | None = None
    """Live mode: wall-clock ns of frame time 0 for replayed sources (default: when the node starts)."""
    clock_skew_ppm: float = 0.0
    """Live mode, replayed sources: the camera clock runs this much fast (a drifting camera, for sync to correct)."""
    trace: str | None = None
    """This node's trace part file (None: no trace)."""

    @classmethod
    def from_rig(
        cls, cfg: RigConfig, camera: str, epoch_ns: int | None = None, run_dir: str | Path | None = None
    ) -> CaptureParams:
        if camera not in cfg.cameras:
            raise SourceError(f"no camera named {camera!r} in {cfg.source_file}; cameras: {', '.join(cfg.cameras)}")
        cam = cfg.cameras[camera]
        trace = trace_part(cfg, run_dir, f"capture:{camera}") if run_dir is not None else None
        port, live, trace = camera_port(cfg, camera), cfg.mode == "live", trace and str(trace)
        return cls(camera, port, live, cam.reconnect, epoch_ns, cam.clock_skew_ppm, trace)


def rig_source(cfg: RigConfig, camera: str, frames: int | None = None) -> SourceFactory:
    """The configured source of a camera, as a factory (``frames`` caps the mono-clock frame count)."""
    return lambda: open_source(cfg, camera, frames)


def rig_transform(cfg: RigConfig, camera: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The camera's rectification from its calibration file, or None."""
    cam = cfg.cameras[camera]
    if not cam.calibration:
        return None
    from streamfuse.rectify import Rectifier

    return Rectifier.load(cam.calibration, cam.calibration_side).apply


class CaptureNode(loop.Operator):
    """Publishes one camera. Offline: blocking sends (backpressure reaches the source). Live: paced to the
    camera clock, non-blocking sends, frames that find the link full are dropped and counted."""

    def __init__(
        self,
        params: CaptureParams,
        source: SourceFactory,
        sender: Sender,
        stop: StopFlag,
        reporter: Reporter | None = None,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.params = params
        self.outputs = (params.port,)
        self.sender = sender
        self.stop = stop
        self.transform = transform
        self.reporter = reporter or Reporter(f"capture:{params.camera}", enabled=False)
        self.epoch_ns = params.epoch_ns if params.epoch_ns is not None else time.time_ns()
        self._open = source
        self._frames = self._stream()
        self._done = False
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.trace = TraceRecorder(params.trace, f"capture:{params.camera}")

    @property
    def done(self) -> bool:
        return self._done

    def _stamp(self, frame: CapturedFrame, source_live: bool) -> int:
        """Live: wall-clock ns (sleeping until the frame is due when replaying a file or the synthetic rig).
        Offline: the media timestamp."""
        if not self.params.live or source_live:
            return frame.ts_ns
        due = self.epoch_ns + frame.ts_ns
        delay = (due - time.time_ns()) / 1e9
        if delay > 0:
            self.stop.wait(delay)
        return due + round(frame.ts_ns * self.params.clock_skew_ppm * 1e-6)  # the camera's own clock reads this

    def _stream(self) -> Iterator[tuple[CapturedFrame, bool]]:
        """Frames from the source; a live source that fails is reopened with exponential backoff."""
        backoff = 0.5
        retry = self.params.live and self.params.reconnect
        while not self.stop():
            try:
                source = self._open()
            except SourceError as exc:
                if not retry:
                    raise
                backoff = self._retry_later(f"{exc}; retrying", "reconnect_attempts", backoff)
                continue
            try:
                for frame in source.frames():
                    backoff = 0.5
                    yield frame, source.live
                    if self.stop():
                        return
                return
            except SourceError as exc:
                if not (source.live and retry):
                    raise
                backoff = self._retry_later(f"{exc}; reconnecting", "source_failures", backoff)
            finally:
                self.reporter.counts.update(source.health())  # e.g. damaged frames a file source skipped
                source.close()

    def _retry_later(self, what: str, counter: str, backoff: float) -> float:
        """Count and log a source failure, wait ``backoff`` seconds (or until a stop), return the next backoff."""
        log.warning("%s in %.1f s", what, backoff)
        self.reporter.counts[counter] += 1
        self.stop.wait(backoff)
        return min(backoff * 2, 8.0)

    def step(self, msg: loop.Message | None = None) -> None:
        """Publish the next frame of the source (the end of the source ends the node)."""
        read_ns = time.time_ns()
        item = next(self._frames, None)
        read_end_ns = time.time_ns()
        if item is None:
            self._done = True
            return
        frame, source_live = item
        live, stream = self.params.live, self.params.port.stream
        ts = self._stamp(frame, source_live)
        send_ns = time.time_ns()
        image = self.transform(frame.image) if self.transform else frame.image
        truth = None
        if frame.truth is not None:
            truth = list(encode_frame(frame.truth, stream | TRUTH_STREAM_FLAG, self.seq, ts))
        if truth and not live:  # offline the truth goes first, so it is there when its frame is fused
            self.sender.send(truth, block=True, stop=self.stop)
        parts = list(encode_frame(image, stream, self.seq, ts, wall_ns=time.time_ns()))
        ok = self.sender.send(parts, block=not live, stop=self.stop)
        if truth and live and ok and not self.sender.send(truth, block=False):
            self.reporter.counts["truth_dropped"] += 1  # live: the truth never takes a frame's place
        self.seq += 1
        if self.trace.enabled:
            self.trace.span("capture", self.params.camera, ts, read_ns, read_end_ns, seq=self.seq - 1)
            self.trace.span("send", self.params.camera, ts, send_ns, time.time_ns(), sent=ok)
        if ok:
            self.sent += 1
            self.reporter.frame({"dropped": self.dropped})
        else:
            self.dropped += 1
            if not live:
                self._done = True  # a blocking send only fails when a stop was requested

    def end_streams(self, stop: StopFlag) -> None:
        finish_streams(self.sender, [(self.params.port.stream, self.seq)], self.params.live, stop)

    def summary(self) -> dict:
        return {
            "camera": self.params.camera,
            "sent": self.sent,
            "dropped": self.dropped,
            "fps": self.reporter.fps(),
            **self.reporter.counts,
        }

    def close(self) -> None:
        self._frames.close()  # closes the source if the loop ended early
        self.trace.close()


def run_capture_node(
    cfg: RigConfig, camera: str, run_dir: str | Path, frames: int | None, epoch_ns: int | None, report: bool = True
) -> dict:
    """Run a capture node with real ZeroMQ sockets until done (`streamfuse node capture`, and the launcher)."""
    params = CaptureParams.from_rig(cfg, camera, epoch_ns, run_dir)
    stop = StopFlag().install()
    zctx = ZmqContext()
    sender = ZmqSender(zctx, endpoint_for(cfg, camera, run_dir), live=params.live)
    try:
        reporter = Reporter(f"capture:{camera}", enabled=report)
        node = CaptureNode(params, rig_source(cfg, camera, frames), sender, stop, reporter, rig_transform(cfg, camera))
        return loop.run(node, None, stop)
    finally:
        sender.close()
        zctx.close()
