"""What a run shows a person: the live status line, the run summary (a dict, also written as JSON) and its text.

The supervisor owns the processes; this module only turns what they reported into words and numbers, and owns the
terminal while a run is on it (``Console``): log lines scroll above the status line instead of running into it,
and the last line shown is made from the final summary, not from stats that can be a second old.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from streamfuse.config.schema import RigConfig

LABEL_WIDTH = 15  # the summary's label column, fixed so that lines look the same from run to run
NON_TTY_EVERY_S = 5  # off a terminal (a log file, CI) the status line is printed this often
STALE_DECISIONS = ("fallback_last", "fallback_grey", "no_reference")  # frames whose reference was too old or absent


@dataclass
class NodeStats:
    """The newest ``stats`` line of one node (the fields the status line shows; all optional)."""

    frames: int = 0
    fps: float = 0.0
    latency_ms: float | None = None
    dropped: int = 0
    rejected: int = 0
    engine_ms: float | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> NodeStats:
        """Read a node's stats line; unknown keys are ignored, missing ones keep their defaults."""
        known = {k: event[k] for k in cls.__dataclass_fields__ if event.get(k) is not None}
        return cls(**known)


@dataclass
class NodeRecord:
    """What one node process left behind: its name, its last stats and summary, and how it ended."""

    name: str
    stats: NodeStats = field(default_factory=NodeStats)
    summary: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    error: str | None = None
    """The node's last error line on stderr (a user error, or the last line of a traceback)."""


def status_line(elapsed: float, nodes: dict[str, NodeRecord], restarts: dict[str, int]) -> str:
    """One line: per node frames, fps, latency, drops, rejects and restarts."""
    parts = [f"{elapsed:6.1f}s"]
    for name, node in nodes.items():
        st = node.stats
        if not st.frames and not st.fps:
            continue
        text = f"{name} {st.frames}f {st.fps:.1f}fps"
        if st.latency_ms is not None:
            text += f" lat {st.latency_ms:.0f}ms"
        if st.dropped:
            text += f" drop {st.dropped}"
        if st.rejected:
            text += f" rej {st.rejected}"
        if restarts.get(name):
            text += f" restarts {restarts[name]}"
        parts.append(text)
    return " | ".join(parts)


def draw(stream: TextIO | None, line: str, elapsed: float, final: bool = False) -> None:
    """Show the status line: redrawn in place on a terminal, every 5 s (and at the end) otherwise."""
    if stream is None:
        return
    if stream.isatty():
        stream.write("\r\x1b[K" + line + ("\n" if final else ""))
    elif final or int(elapsed) % 5 == 0:
        stream.write(line + "\n")
    stream.flush()


class Console:
    """Where a run's status line and its log lines go, so they never collide.

    On a terminal the status line stays at the bottom, redrawn in place; each log line (a node's stderr, the
    launcher's own logging) clears it, is written, and the status line is drawn again below it. Off a terminal
    logs pass through and the status line is printed every few seconds. ``stream=None``: no status line, and logs
    still go to stderr.
    """

    def __init__(self, stream: TextIO | None = sys.stderr) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self._line = ""  # the status line now on the terminal
        self._printed_at = -1  # off a terminal: the 5 s slot last printed
        self._lock = threading.Lock()

    def log(self, text: str) -> None:
        """Write one log line above the status line."""
        out = self.stream if self.stream is not None else sys.stderr
        with self._lock:
            if self.tty and self._line:
                out.write("\r\x1b[K")
            out.write(text if text.endswith("\n") else text + "\n")
            if self.tty and self._line:
                out.write(self._line)
            out.flush()

    def update(self, elapsed: float, nodes: dict[str, NodeRecord], restarts: dict[str, int]) -> None:
        """Show the live status line of a running rig."""
        if self.stream is None:
            return
        line = status_line(elapsed, nodes, restarts)
        with self._lock:
            if self.tty:
                self.stream.write("\r\x1b[K" + line)
                self._line = line
            elif int(elapsed) // NON_TTY_EVERY_S != self._printed_at:
                self._printed_at = int(elapsed) // NON_TTY_EVERY_S
                self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self, summary: dict) -> None:
        """Replace the status line by one final line that is true: it is made from the run summary."""
        if self.stream is None:
            return
        with self._lock:
            self.stream.write(("\r\x1b[K" if self.tty else "") + final_line(summary) + "\n")
            self.stream.flush()
            self._line = ""

    @contextlib.contextmanager
    def logs_above(self) -> Iterator[None]:
        """While the run is on, this process's own log lines (handlers on stderr) go through :meth:`log`."""
        targets = {id(sys.stderr), id(self.stream)}
        handlers = [
            h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler and id(h.stream) in targets
        ]
        writer = _LogWriter(self)
        old = [h.setStream(writer) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, old, strict=True):
                handler.setStream(stream)


class _LogWriter:
    """A file-like object for logging handlers: whole lines go to ``Console.log``."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self.console.log(line)
        return len(text)

    def flush(self) -> None:
        pass


class ProgressConsole(Console):
    """A progress bar instead of the status line (``streamfuse transcode``): frames done/total, fps and ETA.

    The count is the encoder's frames written; log lines are written above the bar.
    """

    def __init__(self, total: int | None, stream: TextIO | None = sys.stderr, desc: str = "transcode") -> None:
        super().__init__(stream)
        self.total = total
        self.desc = desc
        self._bar = None

    def _ensure_bar(self) -> Any:
        if self._bar is None and self.stream is not None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="frame", desc=self.desc, file=self.stream, dynamic_ncols=True)
        return self._bar

    def log(self, text: str) -> None:
        if self._bar is None:
            super().log(text)
            return
        with self._lock:
            self._bar.write(text.rstrip("\n"), file=self.stream)

    def update(self, elapsed: float, nodes: dict[str, NodeRecord], restarts: dict[str, int]) -> None:
        bar = self._ensure_bar()
        encode = nodes.get("encode")
        if bar is not None and encode is not None:
            with self._lock:
                bar.update(max(0, encode.stats.frames - bar.n))

    def finish(self, summary: dict) -> None:
        bar = self._bar
        if bar is not None:
            with self._lock:
                bar.update(max(0, summary["frames_out"] - bar.n))  # end on the true count
                bar.close()
            self._bar = None
        # no extra final line: the command prints its own summary right below the bar


def as_console(status: TextIO | Console | None) -> Console:
    """The console of a run from what a caller gave as ``status`` (a stream, None, or a Console)."""
    return status if isinstance(status, Console) else Console(status)


def final_line(s: dict) -> str:
    """The last line of a run, from its summary: how it ended, frames in and out, and what was written."""
    bad = {n: c for n, c in s["exit_codes"].items() if c not in (0, None)}
    if bad:
        head = "failed: " + ", ".join(f"{n} exit {c}" for n, c in bad.items())
    elif s["stopped_by"] == "end of input":
        head = "done"
    else:
        head = f"stopped by {s['stopped_by']}"
    outputs = ", ".join(s["outputs"]) or "no output written"
    fps = f", {s['e2e_fps']:.1f} fps" if s.get("e2e_fps") else ""
    return f"{head} after {s['wall_s']:.1f} s: {s['frames_in']} frames in, {s['frames_out']} out{fps}; {outputs}"


def written_outputs(enc: dict) -> tuple[list[str], list[str]]:
    """The encoder's outputs split into those written (frames and a file) and those that were not."""
    frames = enc.get("frames") or []
    written, missing = [], []
    for i, path in enumerate(enc.get("outputs", [])):
        n = frames[i] if i < len(frames) else 0
        (written if n and Path(path).is_file() else missing).append(path)
    return written, missing


def reference_text(sync: dict) -> str:
    """How the mono frames got their colour reference, in words (the tracker's counts)."""
    if not sync:
        return "-"
    fresh, reused = sync.get("fresh", 0), sync.get("reused", 0)
    stale = sum(sync.get(k, 0) for k in STALE_DECISIONS)
    text = (
        f"{sync.get('references_prepared', 0)} of {sync.get('colour_frames', 0)} colour frames used; "
        f"mono frames: {fresh} fresh, {reused} reused, {stale} stale"
    )
    details = [f"{sync[k]} {k.replace('_', ' ')}" for k in STALE_DECISIONS if sync.get(k)]
    extra = [f"{sync[k]} {k.replace('_', ' ')}" for k in ("colour_restarts", "colour_duplicates") if sync.get(k)]
    if details:
        text += f" ({', '.join(details)})"
    if extra:
        text += f"; {', '.join(extra)}"
    return text


def build_summary(
    cfg: RigConfig,
    nodes: dict[str, NodeRecord],
    lost_runs: dict[str, list[NodeRecord]],
    restarts: dict[str, int],
    rejoins: list[dict],
    stopped_by: str | None,
    wall_s: float,
) -> dict:
    """The run summary from every node's report (``lost_runs``: earlier runs of restarted nodes)."""
    summaries = {name: (n.summary or {}) for name, n in nodes.items()}
    fuse = summaries.get("fuse", {})
    enc = summaries.get("encode", {})
    caps = {n: s for n, s in summaries.items() if n.startswith("capture:")}
    mono = caps.get(f"capture:{cfg.mono_camera}", {})
    lost = lost_runs.get(f"capture:{cfg.mono_camera}", [])
    frames_in = mono.get("sent", 0) + sum(n.stats.frames for n in lost)
    frames_out = (enc.get("frames") or [0])[0]
    mono_node = nodes.get(f"capture:{cfg.mono_camera}")
    estimated = bool(mono_node and mono_node.summary is None)
    if estimated:  # a capture that failed left no summary: its last stats line, and at least what was recorded
        frames_in += max(mono_node.stats.frames, frames_out)
    return {
        "config": cfg.source_file,
        "engine": cfg.engine.name,
        "mode": cfg.mode,
        "stopped_by": stopped_by or "end of input",
        "wall_s": round(wall_s, 2),
        "frames_in": frames_in,
        "frames_in_estimated": estimated,
        "frames_out": frames_out,
        "e2e_fps": enc.get("fps"),
        "fuse_fps": fuse.get("fps"),
        "engine_ms_p50": fuse.get("engine_ms_p50"),
        "latency_p50_ms": enc.get("latency_ms_p50"),
        "latency_p99_ms": enc.get("latency_ms_p99"),
        "psnr_cbcr": fuse.get("psnr_cbcr"),
        "capture_dropped": sum(s.get("dropped", 0) for s in caps.values()),
        "fuse_stale_dropped": fuse.get("stale_mono_dropped", 0),
        "fuse_output_dropped": fuse.get("output_dropped", 0),
        "rejected": fuse.get("rejected", {}),
        "sync": fuse.get("sync", {}),
        "seq": fuse.get("seq", {}),
        "links": fuse.get("links", {}),
        "restarts": dict(restarts),
        "rejoins": rejoins,
        "outputs": written_outputs(enc)[0],
        "outputs_not_written": written_outputs(enc)[1],
        "stale_reference_frames": sum(fuse.get("sync", {}).get(k, 0) for k in STALE_DECISIONS),
        "corrupt_frames_skipped": sum(s.get("corrupt_frames", 0) for s in caps.values()),
        "cpu_ms_per_frame": {
            name: round(s["cpu_s"] * 1000 / frames_out, 2)
            for name, s in summaries.items()
            if s.get("cpu_s") is not None and frames_out
        },
        "exit_codes": {n: r.exit_code for n, r in nodes.items()},
        "errors": {n: r.error for n, r in nodes.items() if r.error and r.exit_code not in (0, None)},
        "cameras": camera_summary(cfg, summaries, lost_runs),
    }


def camera_summary(cfg: RigConfig, summaries: dict[str, dict], lost_runs: dict[str, list[NodeRecord]]) -> dict:
    """Every camera of the rig: role, partner, frames sent and dropped (restarts included), and for a mono camera
    its frames recorded, capture->encode latency and, live, its clock drift."""
    fuse, enc = summaries.get("fuse", {}), summaries.get("encode", {})
    drift = fuse.get("drift_ppm", {})
    cameras = {}
    for name, cam in cfg.cameras.items():
        cap = summaries.get(f"capture:{name}", {})
        lost = lost_runs.get(f"capture:{name}", [])
        entry = {
            "role": cam.role,
            "sent": cap.get("sent", 0) + sum(n.stats.frames for n in lost),
            "dropped": cap.get("dropped", 0),
            "drift_ppm": drift.get(name),
        }
        if name in cfg.mono_cameras:
            outs = [o for o in enc.get("by_output", []) if o["camera"] == name]
            entry["partner"] = cfg.partner_of(name)
            entry["frames_out"] = outs[0]["frames"] if outs else 0
            entry["latency_p50_ms"] = outs[0]["latency_ms_p50"] if outs else None
        cameras[name] = entry
    return cameras


def format_summary(s: dict) -> str:
    """The run summary as an aligned table: one topic per line, words instead of raw counters."""

    def num(v: Any, unit: str = "", fmt: str = "{:.1f}") -> str:
        return "n/a" if v is None else fmt.format(v) + unit

    rejected = sum(s["rejected"].values())
    drops = s["capture_dropped"] + s["fuse_stale_dropped"] + s["fuse_output_dropped"]
    rows = [
        ("frames", f"{'about ' if s.get('frames_in_estimated') else ''}{s['frames_in']} in, {s['frames_out']} out"),
        (
            "drops",
            f"{drops} (capture {s['capture_dropped']}, stale mono {s['fuse_stale_dropped']}, "
            f"output {s['fuse_output_dropped']}); rejected messages {rejected}"
            + (f" {s['rejected']}" if rejected else ""),
        ),
        (
            "speed",
            f"{num(s['e2e_fps'], ' fps')} end to end, fusion {num(s['fuse_fps'], ' fps')}, "
            f"engine {num(s['engine_ms_p50'], ' ms')} per frame (p50)",
        ),
        ("latency", f"capture to encode {num(s['latency_p50_ms'], ' ms')} p50, {num(s['latency_p99_ms'], ' ms')} p99"),
        ("references", reference_text(s["sync"])),
        (
            "faults",
            f"restarts {_restart_text(s['restarts'])}, rejoined {_rejoin_text(s['rejoins'])}",
        ),
    ]
    if s.get("corrupt_frames_skipped"):
        rows.append(("damaged input", f"{s['corrupt_frames_skipped']} frames skipped"))
    if s["psnr_cbcr"] is not None:
        rows.append(("quality", f"chroma PSNR {num(s['psnr_cbcr'], ' dB', '{:.2f}')} against the ground truth"))
    rows.append(("outputs", ", ".join(s["outputs"]) or "none written"))
    if s.get("outputs_not_written"):
        rows.append(("not written", ", ".join(s["outputs_not_written"])))
    if len(s.get("cameras", {})) > 2 or any(c.get("drift_ppm") for c in s.get("cameras", {}).values()):
        rows.append(("cameras", "  ".join(_camera_text(n, c) for n, c in s["cameras"].items())))
    bad = {n: c for n, c in s["exit_codes"].items() if c != 0}
    if bad:
        rows.append(("FAILED nodes", ", ".join(f"{n} (exit {c})" for n, c in bad.items())))
        rows += [(f"  {name}", error) for name, error in s.get("errors", {}).items()]
    width = max(LABEL_WIDTH, *(len(k) + 2 for k, _ in rows))
    head = f"run summary: {s['mode']}, engine {s['engine']}, {s['wall_s']} s, stopped by {s['stopped_by']}"
    return "\n".join([head, *(f"  {k:<{width}}{v}" for k, v in rows)])


def _camera_text(name: str, c: dict) -> str:
    text = f"{name} ({c['role']}) sent {c['sent']}"
    if "frames_out" in c:
        text += f" out {c['frames_out']} via {c['partner']}"
    if c.get("dropped"):
        text += f" drop {c['dropped']}"
    if c.get("drift_ppm") is not None:
        text += f" drift {c['drift_ppm']:+.0f} ppm"
    return text + ";"


def _restart_text(restarts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in restarts.items() if n) or "none"


def _rejoin_text(rejoins: list[dict]) -> str:
    if not rejoins:
        return "-"
    return ", ".join(
        f"{r['link']} after {r['gap_ms']:.0f} ms without frames"
        + (f" ({r['after_restart_ms']:.0f} ms after its restart)" if r["after_restart_ms"] is not None else "")
        for r in rejoins
    )
