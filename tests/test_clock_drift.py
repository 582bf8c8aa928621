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


@pytest.mark.parametrize("ppm", [20_000.0, -5_000.0, 417.0])
def test_drift_is_estimated_and_corrected(ppm: float) -> None:
    drift = feed(ppm, 1800)  # one minute at 30 fps
    assert drift.ppm == pytest.approx(ppm, abs=0.05 * abs(ppm) + 60)
    i = 1799
    stamp = 10**12 + round(i * PERIOD_NS * (1 + ppm * 1e-6))
    error_ms = abs(drift.corrected(stamp) - (10**12 + i * PERIOD_NS)) / 1e6
    uncorrected_ms = abs(stamp - (10**12 + i * PERIOD_NS)) / 1e6
    assert error_ms < max(2.0, 0.1 * uncorrected_ms)  # 417 ppm: 25 ms off after a minute, corrected to a few ms


def test_no_estimate_and_no_correction_before_enough_data() -> None:
    drift = feed(20_000.0, 30)  # one second: too little to tell drift from jitter
    assert drift.ppm is None and drift.corrected(12345) == 12345
    assert drift.as_dict() == {"drift_ppm": None}


def test_a_camera_restart_starts_the_estimate_again() -> None:
    drift = feed(20_000.0, 600)
    assert drift.ppm is not None
    drift.observe(10**11, 10**11 + 2_000_000)  # stamps went back: a restarted camera
    assert drift.ppm is None
