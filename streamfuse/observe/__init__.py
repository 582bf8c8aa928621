"""Observability of a running rig: Prometheus metrics, a live preview page, and a per-frame latency trace.

Nothing here is imported by the nodes unless an operator asks for it (``--metrics-port``, ``--preview-port``,
``--trace``), so a rig without them pays nothing.
"""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"  # served on loopback unless the operator names an address (HOST:PORT)


def parse_listen(text: str) -> tuple[str, int]:
    """``"9100"`` or ``"0.0.0.0:9100"`` -> (host, port); the error names the expected form."""
    host, sep, port = str(text).rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number < 65536:
        raise ValueError(f"expected PORT or HOST:PORT with a port in 0..65535 (0: any free port), got {text!r}")
    return (host if sep and host else DEFAULT_HOST), number
