"""What every node shares: wire limits, end-of-stream markers, stop handling, and JSON-line stats for the launcher."""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from streamfuse.config.schema import RigConfig
from streamfuse.transport import Sender, deadline
from streamfuse.wire import Limits, encode_eos

OFFLINE_DRAIN_S = 24 * 3600.0  # offline: how long a finished sender waits for a slow receiver to read everything
LIVE_DRAIN_S = 2.0  # live: how long a finished sender tries to deliver its end marker
STOPPED_EOS_S = 3.0  # offline, stopped (Ctrl-C): how long a sender still tries to queue its end marker
STOPPED_DRAIN_S = 25.0  # offline, stopped: how long it then stays connected while the receiver reads what it sent


def wire_limits(cfg: RigConfig) -> Limits:
    """Receive limits from the config."""
    return Limits(max_side=cfg.limits.max_side, max_pixels=cfg.limits.max_pixels)


def max_message_bytes(cfg: RigConfig) -> int:
    """Largest message a socket accepts (an RGB frame at the pixel limit plus its header)."""
    return cfg.limits.max_pixels * 3 + 1024


def finish_streams(sender: Sender, streams: list[tuple[int, int]], live: bool, stop: StopFlag) -> None:
    """Send end-of-stream markers (stream id, next seq) and stay connected until the receiver read everything.

    Offline this waits as long as the receiver works (or until a stop request); live it gives up after a moment.
    """
    if live:
        limit, drain_s, drain_stop = deadline(LIVE_DRAIN_S), LIVE_DRAIN_S, stop
    elif stop():
        # Stopped offline (Ctrl-C): the frames already sent are still fused and recorded, so the end marker gets a
        # short, bounded chance behind them instead of none (the receiver would wait for more frames until the
        # launcher's drain limit). A receiver that is gone is noticed by the send and the wait.
        limit, drain_s, drain_stop = deadline(STOPPED_EOS_S), STOPPED_DRAIN_S, None
    else:
        limit, drain_s, drain_stop = stop, OFFLINE_DRAIN_S, stop
    delivered = all(sender.send(list(encode_eos(stream, seq)), block=True, stop=limit) for stream, seq in streams)
    if delivered:
        sender.wait_consumed(drain_s, drain_stop)


class StopFlag:
    """Set by SIGINT/SIGTERM (or by code); nodes poll it to finish cleanly and finalize their outputs."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: int | None = None

    def install(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)
        stop_with_launcher()
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


LAUNCHER_PID_ENV = "STREAMFUSE_LAUNCHER_PID"  # set by `streamfuse run` for the nodes it supervises


def stop_with_launcher() -> None:
    """A node started by `streamfuse run` gets SIGTERM (finalize and exit) if the launcher dies, even by kill -9,
    so that no orphan node is left running. Linux only; standalone nodes are not affected."""
    launcher = os.environ.get(LAUNCHER_PID_ENV)
    if not launcher or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(launcher):  # the launcher died before the request was in place
        os.kill(os.getpid(), signal.SIGTERM)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, or None without values."""
    return float(np.percentile(values, q)) if values else None


class Reporter:
    """Emits ``{"event": "stats"|"summary", "node": ...}`` JSON lines on stdout (the launcher reads them)."""

    def __init__(self, node: str, interval_s: float = 1.0, enabled: bool = True) -> None:
        self.node = node
        self.interval_s = interval_s
        self.enabled = enabled
        self.counts: Counter = Counter()
        self.frames = 0
        self.started = time.monotonic()
        self.first_frame: float | None = None
        self.last_frame: float | None = None
        self._last_emit = self.started
        self._window_frames = 0

    def frame(self, extra: dict | Callable[[], dict] | None = None) -> None:
        """Count one processed frame and emit a stats line when the interval has passed.

        ``extra`` may be a callable, so fields that cost something are only built when a line goes out.
        """
        now = time.monotonic()
        self.frames += 1
        self._window_frames += 1
        self.first_frame = self.first_frame or now
        self.last_frame = now
        if now - self._last_emit >= self.interval_s:
            fps = self._window_frames / (now - self._last_emit)
            fields = (extra() if callable(extra) else extra) or {}
            self.emit("stats", frames=self.frames, fps=round(fps, 2), cpu_s=_cpu_s(), **fields)
            self._last_emit, self._window_frames = now, 0

    def fps(self) -> float | None:
        """Average fps from the first to the last frame."""
        if self.frames < 2 or self.first_frame is None or self.last_frame == self.first_frame:
            return None
        return (self.frames - 1) / (self.last_frame - self.first_frame)

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        if event == "summary":  # the node's own CPU time, so a run can be profiled per stage
            fields.setdefault("cpu_s", _cpu_s())
        line = json.dumps({"event": event, "node": self.node, **fields}, default=_jsonable)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _cpu_s() -> float:
    """CPU time of this process so far (user + system), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Counter):
        return dict(value)
    return str(value)
