"""Fusion node: validates incoming frames, pairs mono with colour, runs the engine, sends results to the encoder."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np

from streamfuse.color import gray_to_rgb
from streamfuse.config.schema import RigConfig
from streamfuse.engines import Engine, load_engine
from streamfuse.metrics import psnr_cbcr
from streamfuse.nodes.common import (
    TRUTH_STREAM_FLAG,
    Reporter,
    StopFlag,
    finish_streams,
    max_message_bytes,
    stream_ids,
    wire_limits,
)
from streamfuse.sync import LinkHealth, ReferenceTracker, SeqTracker
from streamfuse.transport import DEFAULTS, Inbox, Sender, ZmqContext, ZmqInbox, ZmqSender, endpoint_for
from streamfuse.wire import Header, PixelFormat, WireError, decode_frame, encode_frame

log = logging.getLogger("streamfuse.fuse")

MAX_PENDING = 8  # offline: mono frames held while waiting for the colour stream; beyond it, backpressure
COLOUR_WAIT_S = 10.0  # offline: give up waiting for a silent colour camera after this long, and fall back


class FuseNode:
    """The fusion loop over an Inbox (mono + colour links) and a Sender (to the encoder)."""

    def __init__(
        self,
        cfg: RigConfig,
        engine: Engine,
        inbox: Inbox,
        out: Sender,
        stop: StopFlag,
        reporter: Reporter | None = None,
    ) -> None:
        self.cfg = cfg
        self.engine = engine
        self.inbox = inbox
        self.out = out
        self.stop = stop
        self.live = cfg.mode == "live"
        self.limits = wire_limits(cfg)
        self.reporter = reporter or Reporter("fuse", enabled=False)
        ids = stream_ids(cfg)
        self.mono_link = cfg.mono_camera
        self.colour_link = cfg.color_cameras[0]
        self.mono_id = ids[self.mono_link]
        self.colour_id = ids[self.colour_link]
        self.tracker = ReferenceTracker(cfg.sync)
        self.stream = engine.open_stream()  # one engine stream per camera pair
        self.seqs = SeqTracker()
        self.links = {self.mono_link: LinkHealth(), self.colour_link: LinkHealth()}
        self.rejects: Counter = Counter()
        self.counts: Counter = Counter()
        self.pending: deque[tuple[Header, np.ndarray]] = deque()
        self.truth: dict[int, np.ndarray] = {}
        self._unscored: dict[int, np.ndarray] = {}
        self.psnr: list[float] = []
        self.engine_ms: list[float] = []
        self.mono_done = False
        self.out_seq = 0
        self._last_colour_msg = time.monotonic()
        self._last_reject_log = 0.0

    # --- receiving -------------------------------------------------------------------------------------

    def _reject(self, reason: str, detail: str, link: str) -> None:
        self.rejects[reason] += 1
        now = time.monotonic()
        if now - self._last_reject_log > 1.0:  # rate-limited: a flood of bad messages must not flood the log
            log.warning(
                "dropped a bad message on link %s: %s (%d rejected so far)", link, detail, sum(self.rejects.values())
            )
            self._last_reject_log = now

    def _expect(self, link: str, header: Header) -> str | None:
        """Why this (valid) message does not belong on this link, or None."""
        if link == self.mono_link:
            if header.stream == self.mono_id:
                return None if header.eos or header.pixfmt in (PixelFormat.GRAY8, PixelFormat.GRAY16) else "bad_pixfmt"
            if header.stream == self.mono_id | TRUTH_STREAM_FLAG:
                return None if header.pixfmt is PixelFormat.RGB24 else "bad_pixfmt"
            return "bad_stream"
        if link == self.colour_link:
            if header.stream != self.colour_id:
                return "bad_stream"
            return None if header.eos or header.pixfmt is PixelFormat.RGB24 else "bad_pixfmt"
        return "bad_stream"

    def handle(self, link: str, parts: list) -> None:
        """Validate one message and file it; a bad message is dropped and counted, never raised."""
        try:
            header, frame = decode_frame(parts, self.limits)
        except WireError as exc:
            self._reject(exc.reason, str(exc), link)
            return
        problem = self._expect(link, header)
        if problem:
            self._reject(problem, f"stream {header.stream} {header.pixfmt.name} is not expected here", link)
            return
        if header.stream & TRUTH_STREAM_FLAG:
            result = self._unscored.pop(header.seq, None)
            if result is not None:  # live: the truth follows its frame
                self.psnr.append(psnr_cbcr(result, frame))
            elif len(self.truth) < 4 * MAX_PENDING:
                self.truth[header.seq] = frame
            return
        verdict = self.seqs.check(header.stream, header.seq)
        if verdict == "stale":
            self._reject("stale_seq", f"seq {header.seq} is not newer than {self.seqs.last[header.stream]}", link)
            return
        if header.eos:
            self.seqs.last.pop(header.stream, None)  # a restarted camera starts again from seq 0
            if link == self.mono_link:
                self.mono_done = True
            else:
                self.tracker.colour_done = True
            return
        self._arrived(link, verdict == "restart")
        if link == self.colour_link:
            self._last_colour_msg = time.monotonic()
            self.tracker.colour_done = False
            self.tracker.add_colour(header.ts_ns, frame)
            return
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        if self.live and self.pending:
            self.counts["stale_mono_dropped"] += len(self.pending)  # live: only the newest mono frame matters
            for old, _ in self.pending:
                self.truth.pop(old.seq, None)
            self.pending.clear()
        self.pending.append((header, frame))

    def _arrived(self, link: str, restarted: bool) -> None:
        """Link health: a camera that restarted (seq back near 0) is rejoined at once; the gap is reported."""
        gap_ms = self.links[link].arrived(time.monotonic(), restarted)
        if restarted:
            log.warning("camera on link %s restarted after %.0f ms without frames; rejoined", link, gap_ms)
            self.reporter.emit("rejoin", link=link, gap_ms=round(gap_ms, 1), wall_ns=time.time_ns())

    # --- processing ------------------------------------------------------------------------------------

    def _colour_silent(self) -> bool:
        return time.monotonic() - self._last_colour_msg > COLOUR_WAIT_S

    def process_ready(self) -> None:
        """Colorize every pending mono frame whose reference can be decided now."""
        while self.pending:
            header, mono = self.pending[0]
            if not self.live and not self.tracker.ready(header.ts_ns):
                if not self._colour_silent():
                    return
                if not self.counts["colour_timeouts"]:
                    log.warning("no colour frames for %.0f s; continuing with the fallback", COLOUR_WAIT_S)
                self.counts["colour_timeouts"] += 1
            self.pending.popleft()
            self._fuse_one(header, mono)

    def _fuse_one(self, header: Header, mono: np.ndarray) -> None:
        pairing = self.tracker.pair(header.ts_ns)
        if pairing.new:
            self.stream.push_reference(pairing.rgb)  # once per colour frame; reused until the next one
        t0 = time.perf_counter()
        result = gray_to_rgb(mono) if pairing.rgb is None else self.stream.colorize(mono)
        self.engine_ms.append((time.perf_counter() - t0) * 1000)
        truth = self.truth.pop(header.seq, None)
        if truth is not None:
            self.psnr.append(psnr_cbcr(result, truth))
        elif self.live:
            self._unscored = {header.seq: result}  # its truth may still come (live sends it after the frame)
        for index, output in enumerate(self.cfg.outputs):
            frame = np.hstack([gray_to_rgb(mono), result]) if output.side_by_side else result
            parts = list(encode_frame(frame, index, self.out_seq, header.ts_ns, header.wall_ns))
            if not self.out.send(parts, block=not self.live, stop=self.stop):
                self.counts["output_dropped"] += 1
        self.out_seq += 1
        self.reporter.frame({"engine_ms": round(self.engine_ms[-1], 2), "rejected": sum(self.rejects.values())})

    def _wanted(self) -> set[str] | None:
        """Offline backpressure: stop reading a link whose frames cannot be used yet (None = read all)."""
        if self.live:
            return None
        if self.pending:
            self.tracker.prune(self.pending[0][0].ts_ns)
        wanted = set()
        if len(self.pending) < MAX_PENDING:
            wanted.add(self.mono_link)
        if not self.tracker.full:
            wanted.add(self.colour_link)
        return wanted or {self.mono_link, self.colour_link}

    def run(self) -> dict:
        """Loop until the mono stream ends (offline: after every frame is fused) or a stop is requested."""
        while not self.stop():
            msg = self.inbox.recv(DEFAULTS.poll_ms, self._wanted())
            if msg is not None:
                self.handle(*msg)
            self.process_ready()
            if self.mono_done and not self.pending:
                break
        if self.pending and not self.live:
            self.tracker.colour_done = True  # stopping: fuse what is held rather than lose it
            self.process_ready()
        summary = self.summary()
        self.inbox.close()  # upstream nodes waiting for us to read everything may now exit
        finish_streams(self.out, [(i, self.out_seq) for i in range(len(self.cfg.outputs))], self.live, self.stop)
        return summary

    def summary(self) -> dict:
        summary = {
            "frames": self.reporter.frames,
            "fps": self.reporter.fps(),
            "engine": self.engine.name,
            "engine_ms_p50": float(np.percentile(self.engine_ms, 50)) if self.engine_ms else None,
            "engine_ms_p99": float(np.percentile(self.engine_ms, 99)) if self.engine_ms else None,
            "psnr_cbcr": float(np.mean(self.psnr)) if self.psnr else None,
            "psnr_frames": len(self.psnr),
            "rejected": dict(self.rejects),
            "sync": dict(self.tracker.counts),
            "seq": dict(self.seqs.counts),
            "links": {name: health.as_dict() for name, health in self.links.items()},
            **self.counts,
        }
        self.reporter.emit("summary", **summary)
        return summary


def run_fuse_node(cfg: RigConfig, run_dir: str | Path, report: bool = True) -> dict:
    """Run the fusion node with real ZeroMQ sockets until done (the `streamfuse node fuse` command)."""
    import cv2

    stop = StopFlag().install()
    engine = load_engine(cfg.engine.name, **cfg.engine.options)
    cv2.setNumThreads(max(1, cv2.getNumberOfCPUs() - 1))
    zctx = ZmqContext()
    links = {name: endpoint_for(cfg, name, run_dir) for name in (cfg.mono_camera, cfg.color_cameras[0])}
    inbox = ZmqInbox(zctx, links, cfg.mode == "live", max_message_bytes(cfg))
    out = ZmqSender(zctx, endpoint_for(cfg, "output", run_dir), live=cfg.mode == "live")
    try:
        return FuseNode(cfg, engine, inbox, out, stop, Reporter("fuse", enabled=report)).run()
    finally:
        out.close()
        inbox.close()
        zctx.close()
