"""Prometheus metrics of a rig, served with prometheus-client (``streamfuse run --metrics-port P``).

The nodes are separate processes that already report JSON lines to the launcher (``Reporter``); the launcher feeds
every line to :class:`RigMetrics`, which keeps one registry for the whole host. Node reports carry cumulative
counts, so a lost or late line never skews a counter, and the per-frame samples since their previous line for the
histograms. Keys read from a report (all optional):

- capture ``capture:CAM``: ``frames`` (stats) / ``sent`` (summary), ``dropped``, ``cpu_s``;
- fuse: ``rejects`` (stats) / ``rejected`` (summary) {reason: n}, ``stale_mono_dropped``, ``output_dropped``,
  ``cpu_s``, and ``pairs`` {mono camera: {``engine_ms_new`` [...], ``reference_age_ms``, ``drift_ppm`` {camera: ppm}}};
- encode: ``outputs_frames`` [n per output], ``latency_ms_new`` {mono camera: [...]}, ``rejects`` / ``rejected``,
  ``cpu_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("streamfuse.metrics")

LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.033, 0.05, 0.067, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
ENGINE_BUCKETS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.2, 0.5, 1.0)


class RigMetrics:
    """The metrics of one rig; ``cameras`` maps every camera to its role, ``outputs`` each output to its camera."""

    def __init__(self, cameras: Mapping[str, str], outputs: list[str], registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.outputs = list(outputs)
        reg = self.registry
        self.frames_in = Counter(
            "streamfuse_frames_in", "Frames each camera delivered to its link", ["camera"], registry=reg
        )
        self.frames_out = Counter(
            "streamfuse_frames_out", "Fused frames recorded per mono camera", ["camera"], registry=reg
        )
        self.dropped = Counter(
            "streamfuse_dropped_frames", "Frames dropped, by node and reason", ["node", "reason"], registry=reg
        )
        self.rejected = Counter(
            "streamfuse_rejected_messages",
            "Bad messages rejected, by node and reason",
            ["node", "reason"],
            registry=reg,
        )
        self.latency = Histogram(
            "streamfuse_capture_to_encode_seconds",
            "Time from capture to the encoder writing the frame",
            ["camera"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.engine = Histogram(
            "streamfuse_engine_seconds",
            "Engine time per fused frame",
            ["camera"],
            buckets=ENGINE_BUCKETS_S,
            registry=reg,
        )
        self.reference_age = Gauge(
            "streamfuse_reference_age_seconds",
            "Age of the reference the newest frame of a pair used",
            ["camera"],
            registry=reg,
        )
        self.drift = Gauge(
            "streamfuse_clock_drift_ppm",
            "Estimated clock drift of a camera against its mono partner",
            ["camera"],
            registry=reg,
        )
        self.cpu = Counter("streamfuse_node_cpu_seconds", "CPU time used by each node process", ["node"], registry=reg)
        self.restarts = Counter("streamfuse_restarts", "Node restarts by the supervisor", ["node"], registry=reg)
        self._last: dict[tuple[str, str], float] = {}
        for camera, role in cameras.items():  # every camera shows up from the first scrape, at zero
            self.frames_in.labels(camera=camera)
            if role != "color":
                self.frames_out.labels(camera=camera)

    def _advance(self, node: str, key: str, value: float | None, counter: Any) -> None:
        """Move a counter to a node's cumulative ``value`` (a value that went down means the node restarted)."""
        if value is None:
            return
        last = self._last.get((node, key), 0.0)
        delta = value - last if value >= last else value
        self._last[(node, key)] = float(value)
        if delta > 0:
            counter.inc(delta)

    def observe(self, node: str, report: Mapping[str, Any]) -> None:
        """Take one stats or summary line of ``node`` (``capture:CAM``, ``fuse`` or ``encode``)."""
        self._advance(node, "cpu_s", report.get("cpu_s"), self.cpu.labels(node=node))
        if node.startswith("capture:"):
            camera = node.split(":", 1)[1]
            sent = report.get("sent", report.get("frames"))
            self._advance(node, "frames", sent, self.frames_in.labels(camera=camera))
            self._advance(node, "dropped", report.get("dropped"), self.dropped.labels(node=node, reason="link_full"))
            return
        self._rejects(node, report.get("rejects", report.get("rejected")))
        if node.startswith("fuse"):
            for reason in ("stale_mono_dropped", "output_dropped"):
                counter = self.dropped.labels(node=node, reason=reason.removesuffix("_dropped"))
                self._advance(node, reason, report.get(reason), counter)
            for camera, pair in (report.get("pairs") or {}).items():
                for ms in pair.get("engine_ms_new") or ():
                    self.engine.labels(camera=camera).observe(ms / 1000.0)
                if pair.get("reference_age_ms") is not None:
                    self.reference_age.labels(camera=camera).set(pair["reference_age_ms"] / 1000.0)
                for other, ppm in (pair.get("drift_ppm") or {}).items():
                    self.drift.labels(camera=other).set(ppm)
        elif node == "encode":
            for index, frames in enumerate(report.get("outputs_frames") or ()):
                if index < len(self.outputs):
                    self._advance(node, f"out{index}", frames, self.frames_out.labels(camera=self.outputs[index]))
            for camera, samples in (report.get("latency_ms_new") or {}).items():
                for ms in samples:
                    self.latency.labels(camera=camera).observe(ms / 1000.0)

    def _rejects(self, node: str, rejected: Any) -> None:
        if isinstance(rejected, Mapping):
            for reason, count in rejected.items():
                self._advance(node, f"rej:{reason}", count, self.rejected.labels(node=node, reason=reason))

    def restarted(self, node: str) -> None:
        """The supervisor started ``node`` again: count it; its counts start again from zero."""
        self.restarts.labels(node=node).inc()
        for key in [k for k in self._last if k[0] == node and k[1] != "cpu_s"]:
            self._last[key] = 0.0
        self._last[(node, "cpu_s")] = 0.0


class MetricsServer:
    """The registry served over HTTP by prometheus-client's own server, in a daemon thread."""

    def __init__(self, metrics: RigMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self._server, self._thread = start_http_server(port, addr=host, registry=metrics.registry)
        self.host = host
        self.port = int(self._server.server_port)
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
