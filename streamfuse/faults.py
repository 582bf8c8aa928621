"""Fault-injection hooks and process probes for the reliability tests (off unless their variable is set).

``STREAMFUSE_FAULT_ENCODE_DELAY_MS``: the encoder node sleeps this long per frame, a deliberately slow consumer.
It is a test hook, not a tuning knob: it only ever makes the pipeline slower.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def vm_rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB from /proc (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def pids_with_arg(text: str) -> list[int]:
    """Processes whose command line contains ``text`` as one argument (e.g. a rig.yaml path), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if text.encode() in args:
            found.append(int(entry.name))
    return sorted(found)
