"""Fusion node: validates incoming frames, pairs mono with colour, runs the engine, sends results to the encoder.

``step`` does one message: ``handle`` validates and files it, ``process_ready`` fuses every mono frame whose
reference can be decided. Each camera pair keeps one engine stream: ``push_reference`` once per new colour frame
(the reference reuse and age policy of ``streamfuse.sync`` decide which), ``colorize`` for every mono frame.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb
from streamfuse.config.schema import RigConfig, SyncConfig
from streamfuse.engines import Engine, EngineError, EngineStream, load_engine
from streamfuse.engines.duallens import rig_engine_options
from streamfuse.metrics import psnr_cbcr
from streamfuse.nodes import loop
from streamfuse.nodes.common import Reporter, StopFlag, finish_streams, max_message_bytes, wire_limits
from streamfuse.nodes.ports import TRUTH_STREAM_FLAG, CameraPair, Port, camera_pairs, mosaic_outputs
from streamfuse.observe.rig import preview_folder, trace_part
from streamfuse.observe.trace import TraceRecorder
from streamfuse.sync import ClockDrift, LinkHealth, ReferenceTracker, SeqTracker
from streamfuse.transport import Sender, ZmqContext, ZmqInbox, ZmqSender, endpoint_for
from streamfuse.wire import Header, Limits, PixelFormat, WireError, decode_frame, encode_frame

log = logging.getLogger("streamfuse.fuse")

MAX_PENDING = 8  # offline: mono frames held while waiting for the colour stream; beyond it, backpressure
COLOUR_WAIT_S = 10.0  # offline: give up waiting for a silent colour camera after this long, and fall back
MOSAIC_QUEUE = 64  # offline: results one pair may hold while the others catch up for a mosaic frame


@dataclass(frozen=True)
class FuseParams:
    """What a fusion node needs to know, taken from the rig config once."""

    pairs: tuple[CameraPair, ...]
    side_by_side: tuple[bool, ...]
    """Per rig output: record mono | result instead of the result."""
    sync: SyncConfig = field(default_factory=SyncConfig)
    limits: Limits = field(default_factory=Limits)
    live: bool = False
    output: Port = Port("output", "fused")
    max_pending: int = MAX_PENDING
    colour_wait_s: float = COLOUR_WAIT_S
    mosaic: tuple[int, ...] = ()
    """Rig outputs that record every pair's result tiled in one grid."""
    preview: str | None = None
    """Folder for the live preview's snapshots of each pair (None: no preview)."""
    trace: str | None = None
    """This node's trace part file (None: no trace)."""

    @classmethod
    def from_rig(cls, cfg: RigConfig, run_dir: str | Path | None = None) -> FuseParams:
        sbs = tuple(out.side_by_side for out in cfg.outputs)
        observe = {}
        if run_dir is not None:
            preview, trace = preview_folder(cfg, run_dir), trace_part(cfg, run_dir, "fuse")
            observe = {"preview": str(preview) if preview else None, "trace": str(trace) if trace else None}
        pairs = tuple(camera_pairs(cfg))
        return cls(pairs, sbs, cfg.sync, wire_limits(cfg), cfg.mode == "live", mosaic=mosaic_outputs(cfg), **observe)


class _PairState:
    """The running state of one camera pair: its engine stream, reference tracker, and held mono frames."""

    def __init__(self, pair: CameraPair, stream: EngineStream, sync: SyncConfig) -> None:
        self.pair = pair
        self.stream = stream
        self.tracker = ReferenceTracker(sync)
        self.pending: deque[tuple[Header, np.ndarray]] = deque()
        self.truth: dict[int, np.ndarray] = {}
        self.unscored: dict[int, np.ndarray] = {}
        self.mono_done = False
        self.last_colour_msg = time.monotonic()
        self.camera = pair.mono.link
        self.frames = 0
        self.engine_ms_new: list[float] = []  # since the last stats line (the metrics histogram)
        self.reference_age_ms: float | None = None
        self.results: deque[np.ndarray] = deque()  # results not yet tiled into a mosaic frame


def sized_like(img: np.ndarray, like: np.ndarray | None, scale: float = 1.0) -> np.ndarray:
    """``img`` at the size of ``like`` (or ``scale`` times its own): an engine's output may be larger than its
    mono input (scsnet), and the grey fallback, the side-by-side and the truth score must still line up."""
    h, w = like.shape[:2] if like is not None else (round(img.shape[0] * scale), round(img.shape[1] * scale))
    if img.shape[:2] == (h, w):
        return img
    shrink = h * w < img.shape[0] * img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


class FuseNode(loop.Operator):
    """The fusion operator: mono + colour input ports per camera pair, one output port to the encoder."""

    def __init__(
        self,
        params: FuseParams,
        engine: Engine,
        out: Sender,
        stop: StopFlag,
        reporter: Reporter | None = None,
    ) -> None:
        self.params = params
        self.engine = engine
        self.out = out
        self.stop = stop
        self.live = params.live
        self.reporter = reporter or Reporter("fuse", enabled=False)
        nir = [pair.mono.link for pair in params.pairs if pair.mono.kind == "nir"]
        if nir and not getattr(engine, "accepts_nir", False):
            raise EngineError(
                f"camera {nir[0]!r} is an NIR camera but engine {engine.name!r} cannot take NIR; use cocolor"
            )
        self.pairs = [_PairState(pair, engine.open_stream(), params.sync) for pair in params.pairs]
        ports = (p for pair in params.pairs for p in (pair.mono, pair.colour) if p is not None)
        self.inputs = tuple(dict.fromkeys(ports))
        self.outputs = (params.output,)
        self._ports = {port.link: port for port in self.inputs}
        self.seqs = SeqTracker()
        self.links = {port.link: LinkHealth() for port in self.inputs}
        self.rejects: Counter = Counter()
        self.counts: Counter = Counter()
        self.psnr: list[float] = []
        self.engine_ms: list[float] = []
        self.out_seqs = [0] * len(params.side_by_side)  # per output stream, so each stream's seq has no gaps
        self._last_reject_log = 0.0
        self.drift = {port.link: ClockDrift() for port in self.inputs} if self.live else {}
        self.trace = TraceRecorder(params.trace, "fuse")
        self.snapshots = None
        if params.preview:
            from streamfuse.observe.preview import PreviewSnapshots

            self.snapshots = PreviewSnapshots(params.preview)

    # --- the one-pair view older callers and tests use ---------------------------------------------------

    @property
    def tracker(self) -> ReferenceTracker:
        return self.pairs[0].tracker

    @property
    def stream(self) -> EngineStream:
        return self.pairs[0].stream

    @property
    def pending(self) -> deque:
        return self.pairs[0].pending

    # --- receiving -------------------------------------------------------------------------------------

    def _reject(self, reason: str, detail: str, link: str) -> None:
        self.rejects[reason] += 1
        now = time.monotonic()
        if now - self._last_reject_log > 1.0:  # rate-limited: a flood of bad messages must not flood the log
            log.warning(
                "dropped a bad message on link %s: %s (%d rejected so far)", link, detail, sum(self.rejects.values())
            )
            self._last_reject_log = now

    def _expect(self, port: Port | None, header: Header) -> str | None:
        """Why this (valid) message does not belong on this port, or None."""
        if port is None:
            return "bad_stream"
        if port.primary and header.stream == port.stream | TRUTH_STREAM_FLAG:
            return None if header.pixfmt is PixelFormat.RGB24 else "bad_pixfmt"
        if header.stream != port.stream:
            return "bad_stream"
        return None if header.eos or port.accepts(header.pixfmt) else "bad_pixfmt"

    def handle(self, link: str, parts: list) -> None:
        """Validate one message and file it; a bad message is dropped and counted, never raised."""
        received_ns = time.time_ns()
        try:
            header, frame = decode_frame(parts, self.params.limits)
        except WireError as exc:
            self._reject(exc.reason, str(exc), link)
            return
        port = self._ports.get(link)
        problem = self._expect(port, header)
        if problem:
            self._reject(problem, f"stream {header.stream} {header.pixfmt.name} is not expected here", link)
            return
        mono_of = [p for p in self.pairs if p.pair.mono.link == link]
        colour_of = [p for p in self.pairs if p.pair.colour is not None and p.pair.colour.link == link]
        if header.stream & TRUTH_STREAM_FLAG:
            for state in mono_of:
                self._truth(state, header.seq, frame)
            return
        verdict = self.seqs.check(header.stream, header.seq)
        if verdict == "stale":
            self._reject("stale_seq", f"seq {header.seq} is not newer than {self.seqs.last[header.stream]}", link)
            return
        if header.eos:
            self.seqs.last.pop(header.stream, None)  # a restarted camera starts again from seq 0
            for state in mono_of:
                state.mono_done = True
            for state in colour_of:
                state.tracker.colour_done = True
            return
        self._arrived(link, verdict == "restart")
        ts_ns = header.ts_ns
        if link in self.drift:  # live: the camera's clock against ours; pairing uses corrected stamps
            self.drift[link].observe(header.ts_ns, received_ns)
            ts_ns = self.drift[link].corrected(header.ts_ns)
        if self.trace.enabled:
            self.trace.span("receive", link, header.ts_ns, received_ns, time.time_ns())
        for state in colour_of:
            state.last_colour_msg = time.monotonic()
            state.tracker.colour_done = False
            state.tracker.add_colour(ts_ns, frame)
        if not mono_of:
            return
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        for state in mono_of:
            if self.live and state.pending:
                self.counts["stale_mono_dropped"] += len(state.pending)  # live: only the newest mono frame matters
                for old, *_ in state.pending:
                    state.truth.pop(old.seq, None)
                state.pending.clear()
            state.pending.append((header, frame, ts_ns))

    def _truth(self, state: _PairState, seq: int, frame: np.ndarray) -> None:
        result = state.unscored.pop(seq, None)
        if result is not None:  # live: the truth follows its frame
            self.psnr.append(psnr_cbcr(sized_like(result, frame), frame))
        elif len(state.truth) < 4 * self.params.max_pending:
            state.truth[seq] = frame

    def _arrived(self, link: str, restarted: bool) -> None:
        """Link health: a camera that restarted (seq back near 0) is rejoined at once; the gap is reported."""
        gap_ms = self.links[link].arrived(time.monotonic(), restarted)
        if restarted:
            log.warning("camera on link %s restarted after %.0f ms without frames; rejoined", link, gap_ms)
            self.reporter.emit("rejoin", link=link, gap_ms=round(gap_ms, 1), wall_ns=time.time_ns())

    # --- processing ------------------------------------------------------------------------------------

    def process_ready(self) -> None:
        """Colorize every pending mono frame whose reference can be decided now."""
        for state in self.pairs:
            while state.pending:
                header, mono, ts_ns = state.pending[0]
                alone = state.pair.colour is None  # an NIR camera without a colour camera: nothing to wait for
                if not self.live and not alone and not state.tracker.ready(ts_ns):
                    if time.monotonic() - state.last_colour_msg <= self.params.colour_wait_s:
                        break
                    if not self.counts["colour_timeouts"]:
                        log.warning(
                            "no colour frames for %.0f s; continuing with the fallback", self.params.colour_wait_s
                        )
                    self.counts["colour_timeouts"] += 1
                state.pending.popleft()
                self._fuse_one(state, header, mono, ts_ns)

    def _fuse_one(self, state: _PairState, header: Header, mono: np.ndarray, ts_ns: int) -> None:
        sync_ns = time.time_ns()
        pairing = state.tracker.pair(ts_ns)
        if pairing.new:
            state.stream.push_reference(pairing.rgb)  # once per colour frame; reused until the next one
        engine_ns = time.time_ns()
        t0 = time.perf_counter()
        if pairing.rgb is not None:
            result = state.stream.colorize(mono)
        elif state.pair.mono.kind == "nir":
            result = self.engine.colorize(mono, None)  # no usable colour frame: the NIR engine's learned prior
        elif getattr(self.engine, "automatic", False):
            result = self.engine.colorize(mono, None)  # no usable colour frame: the automatic mode (scsnet)
        else:
            result = sized_like(gray_to_rgb(mono), None, self.engine.output_scale)
        self.engine_ms.append((time.perf_counter() - t0) * 1000)
        self._observed(state, header, mono, pairing, result, (sync_ns, engine_ns, ts_ns))
        truth = state.truth.pop(header.seq, None)
        if truth is not None:
            self.psnr.append(psnr_cbcr(sized_like(result, truth), truth))
        elif self.live:
            state.unscored = {header.seq: result}  # its truth may still come (live sends it after the frame)
        for index in state.pair.outputs:
            sbs = self.params.side_by_side[index]
            frame = np.hstack([sized_like(gray_to_rgb(mono), result), result]) if sbs else result
            self._send(index, frame, header)
        if self.params.mosaic:
            self._mosaic(state, result, header)
        self.reporter.frame(self._stats)

    def _observed(self, state: _PairState, header: Header, mono, pairing, result, times: tuple[int, ...]) -> None:
        """What the metrics, the trace and the preview get of one fused frame (each only when asked for)."""
        state.engine_ms_new.append(self.engine_ms[-1])
        state.frames += 1
        sync_ns, engine_ns, ts_ns = times
        if pairing.ref_ts_ns is not None:
            state.reference_age_ms = (ts_ns - pairing.ref_ts_ns) / 1e6
        if self.trace.enabled:
            self.trace.span("sync", state.camera, header.ts_ns, sync_ns, engine_ns, decision=pairing.decision)
            self.trace.span("engine", state.camera, header.ts_ns, engine_ns, time.time_ns())
        if self.snapshots is not None and self.snapshots.due(state.camera):
            self.snapshots.offer(state.camera, mono, pairing.rgb, result)

    def _send(self, index: int, frame: np.ndarray, header: Header) -> None:
        parts = list(encode_frame(frame, index, self.out_seqs[index], header.ts_ns, header.wall_ns))
        self.out_seqs[index] += 1
        if not self.out.send(parts, block=not self.live, stop=self.stop):
            self.counts["output_dropped"] += 1

    def _mosaic(self, state: _PairState, result: np.ndarray, header: Header) -> None:
        """Once every pair has a new result, tile them (in camera order) into one frame for the mosaic outputs."""
        state.results.append(result)
        if self.live and len(state.results) > 2:
            state.results.popleft()  # live: a mosaic shows the newest frames; a pair that runs ahead does not queue
        elif len(state.results) > MOSAIC_QUEUE:
            state.results.popleft()
            self.counts["mosaic_dropped"] += 1  # offline: a pair far ahead of the others (its partner stalled)
        if any(not other.results for other in self.pairs):
            return
        frame = tile_grid([other.results.popleft() for other in self.pairs])
        for index in self.params.mosaic:
            self._send(index, frame, header)

    def _stats(self) -> dict:
        """The stats line's fields: the status line's, and the counts and samples the metrics need."""
        return {
            "engine_ms": round(self.engine_ms[-1], 2),
            "rejected": sum(self.rejects.values()),
            "rejects": dict(self.rejects),
            "stale_mono_dropped": self.counts["stale_mono_dropped"],
            "output_dropped": self.counts["output_dropped"],
            "pairs": self._pair_reports(),
        }

    def _pair_reports(self) -> dict:
        """Per pair: frames, engine samples since the last report, reference age, clock drift of its cameras."""
        pairs = {}
        for state in self.pairs:
            links = [port.link for port in (state.pair.mono, state.pair.colour) if port is not None]
            drift = {link: round(self.drift[link].ppm, 1) for link in links
                     if link in self.drift and self.drift[link].ppm is not None}  # fmt: skip
            age = state.reference_age_ms
            pairs[state.camera] = {
                "partner": state.pair.colour.link if state.pair.colour is not None else None,
                "frames": state.frames,
                "engine_ms_new": [round(ms, 3) for ms in state.engine_ms_new],
                "reference_age_ms": None if age is None else round(age, 1),
                "drift_ppm": drift,
            }
            state.engine_ms_new = []
        return pairs

    # --- the operator contract ---------------------------------------------------------------------------

    def wanted(self) -> set[str] | None:
        """Offline backpressure: stop reading a link whose frames cannot be used yet (None = read all)."""
        if self.live:
            return None
        wanted = set()
        full = set()  # colour links that some pair cannot take another frame from without losing one it needs
        for state in self.pairs:
            if state.pending:
                state.tracker.prune(state.pending[0][0].ts_ns)
            if len(state.pending) < self.params.max_pending:
                wanted.add(state.pair.mono.link)
            if state.pair.colour is not None:
                wanted.add(state.pair.colour.link)
                if state.tracker.full and not (state.mono_done and not state.pending):
                    full.add(state.pair.colour.link)  # an array: one colour camera feeds several pairs' trackers
        return (wanted - full) or {port.link for port in self.inputs}

    def step(self, msg: loop.Message | None) -> None:
        if msg is not None:
            self.handle(*msg)
        self.process_ready()

    @property
    def done(self) -> bool:
        """Every mono stream ended and every frame of it was fused."""
        return all(state.mono_done and not state.pending for state in self.pairs)

    def stopping(self) -> None:
        if not self.live:
            for state in self.pairs:
                state.tracker.colour_done = True  # stopping: fuse what is held rather than lose it
            self.process_ready()

    def end_streams(self, stop: StopFlag) -> None:
        finish_streams(self.out, list(enumerate(self.out_seqs)), self.live, stop)

    def close(self) -> None:
        self.trace.close()

    def summary(self) -> dict:
        return {
            "frames": self.reporter.frames,
            "fps": self.reporter.fps(),
            "engine": self.engine.name,
            "engine_ms_p50": float(np.percentile(self.engine_ms, 50)) if self.engine_ms else None,
            "engine_ms_p99": float(np.percentile(self.engine_ms, 99)) if self.engine_ms else None,
            "psnr_cbcr": float(np.mean(self.psnr)) if self.psnr else None,
            "psnr_frames": len(self.psnr),
            "rejected": dict(self.rejects),
            "sync": dict(sum((state.tracker.counts for state in self.pairs), Counter())),
            "seq": dict(self.seqs.counts),
            "links": {name: health.as_dict() for name, health in self.links.items()},
            "rejects": dict(self.rejects),
            "pairs": self._pair_reports(),
            "drift_ppm": {link: d.ppm and round(d.ppm, 1) for link, d in self.drift.items()},
            **self.counts,
        }


def tile_grid(tiles: list[np.ndarray]) -> np.ndarray:
    """Tiles of one size (the first's; others are resized) in a near-square grid, row by row, black where empty."""
    import cv2

    h, w = tiles[0].shape[:2]
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, tile in enumerate(tiles):
        if tile.shape[:2] != (h, w):
            tile = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA)
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    return grid


def run_fuse_node(cfg: RigConfig, run_dir: str | Path, report: bool = True) -> dict:
    """Run the fusion node with real ZeroMQ sockets until done (`streamfuse node fuse`, and the launcher)."""
    import cv2

    params = FuseParams.from_rig(cfg, run_dir)
    stop = StopFlag().install()
    from streamfuse.runtime.factory import gpu_options

    with gpu_options(precision=cfg.engine.precision):  # the rig's GPU precision reaches the engine's executors
        engine = load_engine(cfg.engine.name, **rig_engine_options(cfg))  # + a calibrated rig's baseline
    cv2.setNumThreads(max(1, cv2.getNumberOfCPUs() - 1))
    zctx = ZmqContext()
    links = {
        port.link: endpoint_for(cfg, port.link, run_dir)
        for pair in params.pairs
        for port in (pair.mono, pair.colour)
        if port is not None
    }
    inbox = ZmqInbox(zctx, links, params.live, max_message_bytes(cfg))
    out = ZmqSender(zctx, endpoint_for(cfg, "output", run_dir), live=params.live)
    try:
        return loop.run(FuseNode(params, engine, out, stop, Reporter("fuse", enabled=report)), inbox, stop)
    finally:
        out.close()
        inbox.close()
        zctx.close()
