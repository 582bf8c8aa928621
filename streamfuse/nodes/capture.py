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

    @classmethod
    def from_rig(cls, cfg: RigConfig, camera: str, epoch_ns: int | None = None) -> CaptureParams:
        if camera not in cfg.cameras:
            raise SourceError(f"no camera named {camera!r} in {cfg.source_file}; cameras: {', '.join(cfg.cameras)}")
        return cls(camera, camera_port(cfg, camera), cfg.mode == "live", cfg.cameras[camera].reconnect, epoch_ns)


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
        return due

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
                source.close()

    def _retry_later(self, what: str, counter: str, backoff: float) -> float:
        """Count and log a source failure, wait ``backoff`` seconds (or until a stop), return the next backoff."""
        log.warning("%s in %.1f s", what, backoff)
        self.reporter.counts[counter] += 1
        self.stop.wait(backoff)
        return min(backoff * 2, 8.0)

    def step(self, msg: loop.Message | None = None) -> None:
        """Publish the next frame of the source (the end of the source ends the node)."""
        item = next(self._frames, None)
        if item is None:
            self._done = True
            return
        frame, source_live = item
        live, stream = self.params.live, self.params.port.stream
        ts = self._stamp(frame, source_live)
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


def run_capture_node(
    cfg: RigConfig, camera: str, run_dir: str | Path, frames: int | None, epoch_ns: int | None, report: bool = True
) -> dict:
    """Run a capture node with real ZeroMQ sockets until done (`streamfuse node capture`, and the launcher)."""
    params = CaptureParams.from_rig(cfg, camera, epoch_ns)
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
