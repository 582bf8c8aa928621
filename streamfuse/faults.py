"""Fault-injection hooks for the reliability tests (off unless their variable is set).

``STREAMFUSE_FAULT_ENCODE_DELAY_MS``: the encoder node sleeps this long per frame, a deliberately slow consumer.
It is a test hook, not a tuning knob: it only ever makes the pipeline slower.
"""

from __future__ import annotations

import os

from streamfuse.errors import ConfigError

ENCODE_DELAY_ENV = "STREAMFUSE_FAULT_ENCODE_DELAY_MS"


def encode_delay_s() -> float:
    """The per-frame encoder delay asked for by the test hook, in seconds (0 when unset)."""
    raw = os.environ.get(ENCODE_DELAY_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        delay_ms = float(raw)
    except ValueError:
        raise ConfigError(f"{ENCODE_DELAY_ENV}={raw!r} is not a number of milliseconds; unset it") from None
    return max(0.0, delay_ms) / 1000
