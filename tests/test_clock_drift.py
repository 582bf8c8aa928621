"""Clock drift: estimated from capture stamps and arrival times despite transport jitter, corrected, reported."""

from __future__ import annotations

import numpy as np
import pytest

from streamfuse.sync import ClockDrift

PERIOD_NS = 33_333_333


def feed(ppm: float, frames: int, seed: int = 0) -> ClockDrift:
    """A camera whose clock runs ``ppm`` fast, frames arriving 2 ms + exponential jitter (mean 3 ms) later."""
    rng = np.random.default_rng(seed)
    drift = ClockDrift()
    for i in range(frames):
        real = 10**12 + i * PERIOD_NS
        stamp = 10**12 + round(i * PERIOD_NS * (1 + ppm * 1e-6))
        drift.observe(stamp, real + 2_000_000 + int(rng.exponential(3e6)))
    return drift


@pytest.mark.parametrize("ppm", [3000.0, -1500.0, 417.0])
def test_drift_is_estimated_and_corrected(ppm: float) -> None:
    drift = feed(ppm, 1800)  # one minute at 30 fps
    assert drift.ppm == pytest.approx(ppm, abs=0.05 * abs(ppm) + 60) and drift.applied
    i = 1799
    stamp = 10**12 + round(i * PERIOD_NS * (1 + ppm * 1e-6))
    error_ms = abs(drift.corrected(stamp) - (10**12 + i * PERIOD_NS)) / 1e6
    uncorrected_ms = abs(stamp - (10**12 + i * PERIOD_NS)) / 1e6
    assert error_ms < max(2.0, 0.1 * uncorrected_ms)  # 417 ppm: 25 ms off after a minute, corrected to a few ms


def test_no_estimate_and_no_correction_before_enough_data() -> None:
    drift = feed(3000.0, 300)  # ten seconds: too little to tell drift from load
    assert drift.ppm is None and drift.corrected(12345) == 12345
    assert drift.as_dict() == {"drift_ppm": None, "stderr_ppm": None, "applied": False}


def test_an_uneven_load_is_not_mistaken_for_drift() -> None:
    """A host whose delays swing by 60 ms for seconds at a time: no estimate passes the significance test."""
    drift = ClockDrift()
    rng = np.random.default_rng(1)
    for i in range(1200):
        real = 10**12 + i * PERIOD_NS
        load = 60_000_000 if (i // 90) % 2 else 0  # 3 s busy, 3 s quiet
        drift.observe(real, real + 2_000_000 + load + int(rng.exponential(3e6)))
    assert drift.ppm is not None and not drift.applied
    assert drift.corrected(10**12 + 10**10) == 10**12 + 10**10


def test_an_implausible_estimate_is_reported_but_not_applied() -> None:
    drift = feed(20_000.0, 900)
    assert drift.ppm == pytest.approx(20_000, rel=0.05) and not drift.applied


def test_a_camera_restart_starts_the_estimate_again() -> None:
    drift = feed(3000.0, 900)
    assert drift.ppm is not None
    drift.observe(10**11, 10**11 + 2_000_000)  # stamps went back: a restarted camera
    assert drift.ppm is None
