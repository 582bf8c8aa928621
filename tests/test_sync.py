"""Pairing and temporal reference reuse: each colour frame is handed out as new once, then reused."""

from __future__ import annotations

import numpy as np

from streamfuse.config.schema import SyncConfig
from streamfuse.sync import ReferenceTracker, SeqTracker

MS = 1_000_000


def colour(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (30, 40, 3), dtype=np.uint8)


def test_quarter_rate_colour_reuses_each_reference_for_four_mono_frames() -> None:
    tracker = ReferenceTracker(SyncConfig(tolerance_ms=5, max_reference_age_ms=500))
    mono_period, colour_period = 33 * MS, 132 * MS  # colour at 1/4 of the mono fps
    decisions, new = [], 0
    for i in range(16):
        ts = i * mono_period
        if i % 4 == 0:
            tracker.add_colour(ts, colour(i))
        pairing = tracker.pair(ts)
        decisions.append(pairing.decision)
        assert pairing.ref_ts_ns == (ts // colour_period) * colour_period
        new += pairing.new
    assert new == 4  # one prepare per colour frame, not per mono frame (tests/nodes checks the engine calls)
    assert decisions.count("fresh") == 4 and decisions.count("reused") == 12
    assert tracker.counts["references_prepared"] == 4


def test_tolerance_allows_a_slightly_newer_colour_frame() -> None:
    tracker = ReferenceTracker(SyncConfig(tolerance_ms=10))
    tracker.add_colour(0, colour(0))
    tracker.add_colour(105 * MS, colour(1))
    assert tracker.pair(100 * MS).ref_ts_ns == 105 * MS


def test_stale_reference_falls_back_to_grey_and_is_counted() -> None:
    tracker = ReferenceTracker(SyncConfig(max_reference_age_ms=100, fallback="grey"))
    tracker.add_colour(0, colour())
    assert tracker.pair(50 * MS).rgb is not None
    pairing = tracker.pair(150 * MS)
    assert pairing.rgb is None and pairing.decision == "fallback_grey"
    assert tracker.counts["fallback_grey"] == 1


def test_stale_reference_keeps_last_good_when_configured() -> None:
    tracker = ReferenceTracker(SyncConfig(max_reference_age_ms=100, fallback="last"))
    tracker.add_colour(0, colour())
    first = tracker.pair(10 * MS)
    pairing = tracker.pair(500 * MS)
    assert pairing.rgb is first.rgb and pairing.decision == "fallback_last"
    assert tracker.counts["fallback_last"] == 1 and first.new and not pairing.new  # prepared once


def test_no_reference_yet_is_counted() -> None:
    tracker = ReferenceTracker(SyncConfig())
    assert tracker.pair(0).decision == "no_reference"
    assert tracker.counts["no_reference"] == 1


def test_offline_readiness_waits_for_a_newer_colour_frame_or_the_end() -> None:
    tracker = ReferenceTracker(SyncConfig(tolerance_ms=20))
    tracker.add_colour(0, colour())
    assert not tracker.ready(33 * MS)
    tracker.add_colour(66 * MS, colour(1))
    assert tracker.ready(33 * MS) and not tracker.ready(50 * MS)
    tracker.colour_done = True
    assert tracker.ready(10_000 * MS)


def test_colour_restart_resets_history() -> None:
    tracker = ReferenceTracker(SyncConfig())
    tracker.add_colour(1000 * MS, colour(0))
    tracker.add_colour(0, colour(1))
    assert tracker.counts["colour_restarts"] == 1
    assert tracker.pair(10 * MS).ref_ts_ns == 0


def test_seq_tracker_counts_gaps_restarts_and_stale() -> None:
    seqs = SeqTracker()
    assert [seqs.check(1, s) for s in (0, 1, 2, 5, 5, 3, 6, 0, 1)] == [
        "ok",
        "ok",
        "ok",
        "gap",
        "stale",
        "stale",
        "ok",
        "restart",
        "ok",
    ]
    for s in range(2, 100):
        seqs.check(1, s)
    assert seqs.check(1, 3) == "restart"  # a restarted camera whose first frames were lost
    assert seqs.counts["gap_frames_1"] == 2 and seqs.counts["restarts_1"] == 2 and seqs.counts["stale_1"] == 2
