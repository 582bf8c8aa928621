"""Process probes for the reliability tests, read from /proc (Linux): memory of a process, processes of a rig."""

from __future__ import annotations

import os
from pathlib import Path


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
