"""Capture node: reads one camera and publishes its frames (and the synthetic ground truth) on its link."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from streamfuse.config.schema import RigConfig
from streamfuse.errors import SourceError
from streamfuse.nodes.common import TRUTH_STREAM_FLAG, Reporter, StopFlag, finish_streams, stream_ids
from streamfuse.sources import CapturedFrame, open_source
from streamfuse.transport import Sender, ZmqContext, ZmqSender, endpoint_for
from streamfuse.wire import encode_frame

log = logging.getLogger("streamfuse.capture")


class CaptureNode:
    """Publishes one camera. Offline: blocking sends (backpressure reaches the source). Live: paced to the
    camera clock, non-blocking sends, frames that find the link full are dropped and counted."""

    def __init__(
        self,
        cfg: RigConfig,
        camera: str,
        sender: Sender,
        stop: StopFlag,
        frames: int | None = None,
        epoch_ns: int | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        if camera not in cfg.cameras:
            raise SourceError(f"no camera named {camera!r} in {cfg.source_file}; cameras: {', '.join(cfg.cameras)}")
        self.cfg = cfg
        self.camera = camera
        self.sender = sender
        self.stop = stop
        self.frames = frames
        self.live = cfg.mode == "live"
        self.epoch_ns = epoch_ns if epoch_ns is not None else time.time_ns()
        self.stream = stream_ids(cfg)[camera]
        self.reporter = reporter or Reporter(f"capture:{camera}", enabled=False)
        self.seq = 0
        self._rectifier = None
        cam = cfg.cameras[camera]
        if cam.calibration:
            from streamfuse.rectify import Rectifier

            self._rectifier = Rectifier.load(cam.calibration, cam.calibration_side)

    def _stamp(self, frame: CapturedFrame, source_live: bool) -> int:
        """Live: wall-clock ns (sleeping until the frame is due when replaying a file or the synthetic rig).
        Offline: the media timestamp."""
        if not self.live:
            return frame.ts_ns
        if source_live:
            return frame.ts_ns
        due = self.epoch_ns + frame.ts_ns
        delay = (due - time.time_ns()) / 1e9
        if delay > 0:
            self.stop.wait(delay)
        return due

    def _frames(self) -> Iterator[tuple[CapturedFrame, bool]]:
        """Frames from the source; a live source that fails is reopened with exponential backoff."""
        backoff = 0.5
        while not self.stop():
            try:
                source = open_source(self.cfg, self.camera, self.frames)
            except SourceError as exc:
                if not (self.live and self.cfg.cameras[self.camera].reconnect):
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
                if not (source.live and self.cfg.cameras[self.camera].reconnect):
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

    def _finish(self) -> None:
        finish_streams(self.sender, [(self.stream, self.seq)], self.live, self.stop)

    def run(self) -> dict:
        """Publish frames until the source ends, the frame limit is reached or a stop is requested."""
        sent = dropped = 0
        for frame, source_live in self._frames():
            ts = self._stamp(frame, source_live)
            image = self._rectifier.apply(frame.image) if self._rectifier else frame.image
            truth = None
            if frame.truth is not None:
                truth = list(encode_frame(frame.truth, self.stream | TRUTH_STREAM_FLAG, self.seq, ts))
            if truth and not self.live:  # offline the truth goes first, so it is there when its frame is fused
                self.sender.send(truth, block=True, stop=self.stop)
            parts = list(encode_frame(image, self.stream, self.seq, ts, wall_ns=time.time_ns()))
            ok = self.sender.send(parts, block=not self.live, stop=self.stop)
            if truth and self.live and ok and not self.sender.send(truth, block=False):
                self.reporter.counts["truth_dropped"] += 1  # live: the truth never takes a frame's place
            self.seq += 1
            if ok:
                sent += 1
                self.reporter.frame({"dropped": dropped})
            else:
                dropped += 1
                if not self.live:
                    break  # a blocking send only fails when a stop was requested
        self._finish()
        summary = {
            "camera": self.camera,
            "sent": sent,
            "dropped": dropped,
            "fps": self.reporter.fps(),
            **self.reporter.counts,
        }
        self.reporter.emit("summary", **summary)
        return summary


def run_capture_node(
    cfg: RigConfig, camera: str, run_dir: str | Path, frames: int | None, epoch_ns: int | None, report: bool = True
) -> dict:
    """Run a capture node with real ZeroMQ sockets until done (the `streamfuse node capture` command)."""
    stop = StopFlag().install()
    zctx = ZmqContext()
    sender = ZmqSender(zctx, endpoint_for(cfg, camera, run_dir), live=cfg.mode == "live")
    try:
        node = CaptureNode(cfg, camera, sender, stop, frames, epoch_ns, Reporter(f"capture:{camera}", enabled=report))
        return node.run()
    finally:
        sender.close()
        zctx.close()
