"""Per-frame stage timestamps in Chrome trace format (Perfetto and chrome://tracing open the file).

Each node records its own stages of every frame (capture, send / receive, sync, engine / encode) as complete
events in a JSON-lines part file, cheaply and without talking to the other nodes; the launcher merges the parts
into one trace at the end. A frame is identified by its camera and capture timestamp, which travel with it on the
wire, and its stages are linked by flow events so Perfetto draws the frame's path across the processes.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

STAGES = ("capture", "send", "receive", "sync", "engine", "encode")
"""The stages a frame passes, in order; the first opens its flow and the last closes it."""

FLUSH_EVERY = 512  # events buffered before a part file is written (a killed node loses at most these)


def frame_id(camera: str, ts_ns: int) -> int:
    """A stable id for one frame of one camera (its flow id in the trace)."""
    return zlib.crc32(f"{camera}:{ts_ns}".encode())


class TraceRecorder:
    """Collects one node's stage events and appends them to ``path`` (JSON lines); a no-op without a path."""

    def __init__(self, path: str | Path | None, node: str) -> None:
        self.path = Path(path) if path else None
        self.node = node
        self.pid = os.getpid()
        self._events: list[dict[str, Any]] = []
        self._fh: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a")
            self._events.append({"ph": "M", "name": "process_name", "pid": self.pid, "args": {"name": node}})

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    def span(self, stage: str, camera: str, ts_ns: int, start_ns: int, end_ns: int, **args: Any) -> None:
        """One stage of one frame, from ``start_ns`` to ``end_ns`` (wall-clock ``time.time_ns()``)."""
        if self._fh is None:
            return
        if stage not in STAGES:
            raise ValueError(f"unknown trace stage {stage!r}; stages: {', '.join(STAGES)}")
        ts_us = start_ns / 1000.0
        common = {"pid": self.pid, "tid": camera}
        event = {"ph": "X", "name": stage, "cat": "frame", "ts": ts_us, "dur": max(0.0, (end_ns - start_ns) / 1000.0)}
        self._events.append({**event, **common, "args": {"camera": camera, "ts_ns": ts_ns, **args}})
        phase = "s" if stage == STAGES[0] else "f" if stage == STAGES[-1] else "t"
        flow = {"ph": phase, "name": "frame", "cat": "frame", "id": frame_id(camera, ts_ns), "ts": ts_us, **common}
        if phase == "f":
            flow["bp"] = "e"  # bind to the enclosing slice (the encode span), not the next one
        self._events.append(flow)
        if len(self._events) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._fh is None or not self._events:
            return
        self._fh.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in self._events))
        self._fh.flush()
        self._events.clear()

    def close(self) -> None:
        """Write what is buffered and close the part file."""
        self.flush()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def merge(parts: Iterable[str | Path], out: str | Path) -> int:
    """Merge node part files into one Chrome trace JSON at ``out``; returns the number of frame stage events.

    A part file cut short by a killed node loses only its last, partial line.
    """
    events: list[dict[str, Any]] = []
    for part in parts:
        with open(part) as fh:
            for line in fh:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    events.sort(key=lambda e: (e["ph"] != "M", e.get("ts", 0.0)))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}) + "\n")
    return sum(1 for e in events if e["ph"] == "X")


def stage_spans(trace_file: str | Path) -> dict[tuple[str, int], dict[str, dict[str, Any]]]:
    """The stage events of a merged trace by frame ((camera, capture ts) -> stage -> event), for checks and tools."""
    frames: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for event in json.loads(Path(trace_file).read_text())["traceEvents"]:
        if event["ph"] == "X":
            key = (event["args"]["camera"], event["args"]["ts_ns"])
            frames.setdefault(key, {})[event["name"]] = event
    return frames
