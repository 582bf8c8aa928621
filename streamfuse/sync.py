"""Pairing mono frames with colour references, and the temporal reference reuse policy (DESIGN §2).

Each mono frame at time t is paired with the newest colour frame whose timestamp is <= t + tolerance. The tracker
only chooses; it never calls an engine. A colour frame handed out for the first time comes with ``new=True``, and
the fusion node then prepares it once (``stream.push_reference``) and reuses it for every mono frame that pairs
with it. The choice only moves forward in time, so the newest prepared reference is always the one to reuse.
A reference older than ``max_reference_age_ms`` triggers the fallback: ``grey`` passes the mono frame through,
``last`` keeps using the newest reference there is. Every decision is counted.

Camera clocks drift (a cheap colour camera by about a frame a minute): in live mode each camera's drift against the
fusion node's clock is estimated from its capture timestamps and arrival times (``ClockDrift``), its timestamps are
corrected before pairing, and the drift is reported.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from streamfuse.config.schema import SyncConfig


@dataclass
class _ColourFrame:
    ts_ns: int
    rgb: np.ndarray
    handed_out: bool = False


@dataclass
class Pairing:
    """The reference chosen for one mono frame; ``rgb`` is None for a grey frame."""

    rgb: np.ndarray | None
    decision: str  # fresh | reused | fallback_last | fallback_grey | no_reference
    ref_ts_ns: int | None = None
    new: bool = False
    """The first mono frame paired with this colour frame: the consumer prepares it now, once."""


@dataclass
class ReferenceTracker:
    """Holds recent colour frames; answers which reference a mono frame gets and whether it is a new one.

    Counters: ``fresh``/``reused``/``fallback_*``/``no_reference`` per mono frame, ``colour_frames`` received,
    ``references_prepared`` colour frames handed out as new (the fusion node prepares each exactly once).
    """

    cfg: SyncConfig
    keep: int = 8
    counts: Counter = field(default_factory=Counter)
    colour_done: bool = False

    def __post_init__(self) -> None:
        self._frames: deque[_ColourFrame] = deque(maxlen=self.keep)

    @property
    def newest_ts(self) -> int | None:
        return self._frames[-1].ts_ns if self._frames else None

    def add_colour(self, ts_ns: int, rgb: np.ndarray) -> None:
        """Add a colour frame; a timestamp that goes backwards means the camera restarted, so history is reset."""
        if self._frames and ts_ns <= self._frames[-1].ts_ns:
            self.counts["colour_restarts" if ts_ns < self._frames[-1].ts_ns else "colour_duplicates"] += 1
            if ts_ns == self._frames[-1].ts_ns:
                return
            self._frames.clear()
        self._frames.append(_ColourFrame(ts_ns, rgb))
        self.counts["colour_frames"] += 1

    @property
    def full(self) -> bool:
        """No room for another colour frame without evicting one (offline mode then stops reading colour)."""
        return len(self._frames) >= self.keep - 1

    def prune(self, mono_ts_ns: int) -> None:
        """Forget colour frames that no mono frame at or after ``mono_ts_ns`` can pair with."""
        tol = int(self.cfg.tolerance_ms * 1e6)
        while len(self._frames) > 1 and self._frames[1].ts_ns <= mono_ts_ns + tol:
            self._frames.popleft()

    def ready(self, mono_ts_ns: int) -> bool:
        """Offline mode: can the reference of this mono frame be decided (no better colour frame can still come)?"""
        tol = int(self.cfg.tolerance_ms * 1e6)
        return self.colour_done or (self.newest_ts is not None and self.newest_ts > mono_ts_ns + tol)

    def pair(self, mono_ts_ns: int) -> Pairing:
        """Choose the reference for a mono frame (``new`` the first time a colour frame is chosen)."""
        tol = int(self.cfg.tolerance_ms * 1e6)
        chosen = None
        for frame in self._frames:
            if frame.ts_ns <= mono_ts_ns + tol:
                chosen = frame
        if chosen is None:
            self.counts["no_reference"] += 1
            return Pairing(None, "no_reference")
        while self._frames[0] is not chosen:  # older frames can never be chosen again
            self._frames.popleft()
        age_ms = (mono_ts_ns - chosen.ts_ns) / 1e6
        if age_ms > self.cfg.max_reference_age_ms:
            if self.cfg.fallback == "grey":
                self.counts["fallback_grey"] += 1
                return Pairing(None, "fallback_grey", chosen.ts_ns)
            decision = "fallback_last"
        else:
            decision = "reused" if chosen.handed_out else "fresh"
        new = not chosen.handed_out
        if new:
            chosen.handed_out = True
            self.counts["references_prepared"] += 1
        self.counts[decision] += 1
        return Pairing(chosen.rgb, decision, chosen.ts_ns, new)


DRIFT_BUCKET_NS = 500_000_000  # arrivals are grouped per half second of camera time; each group's smallest delay counts
DRIFT_BUCKETS = 480  # the fit uses the last four minutes
DRIFT_MIN_SPAN_S = 20.0  # camera time before an estimate is reported: a shorter span cannot tell drift from load
DRIFT_MAX_PPM = 5000.0  # a larger estimate is reported but never applied (a broken clock, or a stalled host)


@dataclass
class ClockDrift:
    """One camera's clock against the fusion node's: the rate at which its timestamps run ahead (ppm).

    Transport adds only positive delay, so the smallest ``arrival - stamp`` of each half second follows the clock
    offset; a least-squares line through those minima gives the drift rate and its standard error. ``corrected``
    maps a stamp onto the fusion node's clock rate from the first frame on (the initial alignment, a shared epoch,
    is kept), but only once the estimate is plausible and significant: a loaded host delays frames unevenly, and a
    wrong correction would do more harm than drift.
    """

    first_stamp: int | None = None
    ppm: float | None = None
    """The estimate (None until ``DRIFT_MIN_SPAN_S`` of camera time)."""
    stderr_ppm: float | None = None
    applied: bool = False
    """Whether ``corrected`` applies the estimate."""
    min_span_s: float = DRIFT_MIN_SPAN_S
    _mins: deque = field(default_factory=lambda: deque(maxlen=DRIFT_BUCKETS), repr=False)

    def observe(self, stamp_ns: int, arrival_ns: int) -> None:
        """One frame: its capture stamp and the fusion node's wall clock when it arrived."""
        if self.first_stamp is None or stamp_ns < self.first_stamp:  # first frame, or the camera restarted
            self.first_stamp, self.ppm, self.stderr_ppm, self.applied = stamp_ns, None, None, False
            self._mins.clear()
        bucket = (stamp_ns - self.first_stamp) // DRIFT_BUCKET_NS
        delay = arrival_ns - stamp_ns
        if self._mins and self._mins[-1][0] == bucket:
            if delay < self._mins[-1][2]:
                self._mins[-1] = (bucket, stamp_ns, delay)
            return
        self._mins.append((bucket, stamp_ns, delay))
        closed = list(self._mins)[:-1]  # a bucket just closed: refit on the closed ones
        if len(closed) < 4 or (closed[-1][1] - closed[0][1]) / 1e9 < self.min_span_s:
            return
        x = np.array([s - self.first_stamp for _, s, _ in closed], dtype=np.float64)
        y = np.array([d for _, _, d in closed], dtype=np.float64)
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        spread = float(np.sqrt(np.sum((x - x.mean()) ** 2)))
        stderr = float(np.std(resid, ddof=2) / spread) if spread > 0 else float("inf")
        self.ppm = float(-slope / (1.0 + slope) * 1e6)  # d(arrival - stamp)/d(stamp) is -rate for a fast clock
        self.stderr_ppm = stderr * 1e6
        self.applied = abs(self.ppm) <= DRIFT_MAX_PPM and abs(self.ppm) > 3 * self.stderr_ppm

    def corrected(self, stamp_ns: int) -> int:
        """The stamp as the fusion node's clock would have read it (unchanged while no estimate is applied)."""
        if not self.applied or self.first_stamp is None:
            return stamp_ns
        elapsed = stamp_ns - self.first_stamp
        return self.first_stamp + round(elapsed / (1.0 + self.ppm * 1e-6))

    def as_dict(self) -> dict:
        ppm = None if self.ppm is None else round(self.ppm, 1)
        return {"drift_ppm": ppm, "stderr_ppm": None if self.stderr_ppm is None else round(self.stderr_ppm, 1),
                "applied": self.applied}  # fmt: skip


RESTART_SEQ = 16  # a seq that falls back below this means the camera restarted (its first frames may be lost)


class SeqTracker:
    """Per-stream order and gap accounting from the wire seq numbers."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.counts: Counter = Counter()

    def check(self, stream: int, seq: int) -> str:
        """Classify a seq: ok, gap (frames missing before it), restart (fell back near 0), or stale (duplicate)."""
        last = self.last.get(stream)
        if last is None or seq == last + 1:
            verdict = "ok"
        elif seq > last + 1:
            self.counts[f"gap_frames_{stream}"] += seq - last - 1
            verdict = "gap"
        elif seq == 0 or seq < RESTART_SEQ <= last - seq:
            self.counts[f"restarts_{stream}"] += 1
            verdict = "restart"
        else:
            self.counts[f"stale_{stream}"] += 1
            return "stale"
        self.last[stream] = seq
        return verdict


@dataclass
class LinkHealth:
    """Arrival accounting of one link: frames, camera restarts, and the longest time without frames."""

    frames: int = 0
    restarts: int = 0
    max_gap_ms: float = 0.0
    last_arrival: float | None = field(default=None, repr=False)

    def arrived(self, now: float, restarted: bool) -> float:
        """Record a frame that arrived at monotonic time ``now``; returns the time since the previous one in ms."""
        gap_ms = 0.0 if self.last_arrival is None else (now - self.last_arrival) * 1000
        self.last_arrival = now
        self.frames += 1
        self.restarts += int(restarted)
        self.max_gap_ms = max(self.max_gap_ms, gap_ms)
        return gap_ms

    def as_dict(self) -> dict:
        return {"frames": self.frames, "restarts": self.restarts, "max_gap_ms": round(self.max_gap_ms, 1)}
