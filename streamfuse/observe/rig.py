"""The observability of one ``streamfuse run``: what the launcher starts, feeds and closes.

The launcher hands every JSON report line of its nodes to :meth:`RigObserver.report`; the observer keeps the
Prometheus metrics, the preview page's live counters and, at the end, merges the nodes' trace parts into one Chrome
trace. Nodes find their own part of it (where to drop preview snapshots, where to write trace events) through
:func:`preview_folder` and :func:`trace_part`, from the config and the run folder they already share.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from streamfuse.config.schema import RigConfig
from streamfuse.errors import ConfigError
from streamfuse.observe import parse_listen

log = logging.getLogger("streamfuse.observe")


def preview_folder(cfg: RigConfig, run_dir: str | Path) -> Path | None:
    """Where the fusion node drops preview snapshots (None: no preview asked for)."""
    return Path(run_dir) / "preview" if cfg.observe.preview_port is not None else None


def trace_part(cfg: RigConfig, run_dir: str | Path, node: str) -> Path | None:
    """The trace part file of one node (None: no trace asked for)."""
    if not cfg.observe.trace:
        return None
    return Path(run_dir) / "trace" / f"{node.replace(':', '-')}.jsonl"


def _listen(cfg: RigConfig, key: str) -> tuple[str, int]:
    try:
        return parse_listen(getattr(cfg.observe, key))
    except ValueError as exc:
        raise ConfigError(f"{cfg.source_file}: key 'observe.{key}' {exc}") from None


class RigObserver:
    """Metrics server, preview server and trace merge of one run; each only when the config asks for it."""

    def __init__(self, cfg: RigConfig, run_dir: str | Path | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.started = time.monotonic()
        self.nodes: dict[str, dict[str, Any]] = {}
        self.restarts: dict[str, int] = {}
        self.metrics = self.metrics_server = self.preview_server = None
        obs = cfg.observe
        try:
            if obs.metrics_port is not None:
                from streamfuse.observe.metrics import MetricsServer, RigMetrics

                roles = {name: cam.role for name, cam in cfg.cameras.items()}
                outputs = [out.camera or "mosaic" for out in cfg.outputs]
                self.metrics = RigMetrics(roles, outputs)
                self.metrics_server = MetricsServer(self.metrics, *_listen(cfg, "metrics_port"))
            if obs.preview_port is not None:
                from streamfuse.observe.preview import PreviewServer

                folder = preview_folder(cfg, self.run_dir) if self.run_dir is not None else None
                self.preview_server = PreviewServer(folder, self.live_stats, *_listen(cfg, "preview_port"))
        except ImportError as exc:
            self.close()
            raise ConfigError(
                f"metrics and the preview need the [observe] extra ({exc}): pip install 'streamfuse[observe]'"
            ) from None
        except OSError as exc:
            self.close()
            raise ConfigError(f"{cfg.source_file}: key 'observe': cannot listen: {exc}; pick another port") from None
        except BaseException:
            self.close()
            raise

    def use_run_dir(self, run_dir: str | Path) -> None:
        """The run folder the nodes share (the launcher makes it after the servers are up)."""
        self.run_dir = Path(run_dir)
        if self.preview_server is not None:
            self.preview_server.folder = preview_folder(self.cfg, run_dir)

    @property
    def urls(self) -> dict[str, str]:
        """The addresses being served, for the operator (and tests using port 0)."""
        urls = {}
        if self.metrics_server:
            urls["metrics"] = self.metrics_server.url
        if self.preview_server:
            urls["preview"] = self.preview_server.url
        return urls

    def report(self, node: str, msg: dict[str, Any]) -> None:
        """One JSON line of a node (stats or summary)."""
        if msg.get("event") == "stats":
            self.nodes[node] = msg
        if self.metrics is not None and msg.get("event") in ("stats", "summary"):
            self.metrics.observe(node, msg)

    def restarted(self, node: str) -> None:
        self.restarts[node] = self.restarts.get(node, 0) + 1
        if self.metrics is not None:
            self.metrics.restarted(node)

    def live_stats(self) -> dict[str, Any]:
        """The preview page's counters: per node frames, fps, latency, drops, rejects, restarts."""
        nodes = {}
        for name, st in sorted(self.nodes.items()):
            rejected = st.get("rejected", 0)
            nodes[name] = {
                "frames": st.get("frames"),
                "fps": st.get("fps"),
                "latency_ms": st.get("latency_ms"),
                "dropped": st.get("dropped", 0) + st.get("stale_mono_dropped", 0) + st.get("output_dropped", 0),
                "rejected": sum(rejected.values()) if isinstance(rejected, dict) else rejected,
                "restarts": self.restarts.get(name, 0),
            }
        return {"cameras": self.cfg.mono_cameras, "elapsed_s": time.monotonic() - self.started, "nodes": nodes}

    def merge_trace(self) -> dict[str, Any]:
        """Merge the nodes' trace parts into the trace file (before the run folder goes); returns what was written."""
        trace = self.cfg.observe.trace
        parts = sorted((self.run_dir / "trace").glob("*.jsonl")) if trace and self.run_dir is not None else []
        if not parts:
            return {}
        from streamfuse.observe.trace import merge

        events = merge(parts, trace)
        log.info("trace: %d stage events in %s (open it in https://ui.perfetto.dev)", events, trace)
        return {"trace": trace, "trace_events": events}

    def close(self) -> None:
        """Stop serving."""
        for server in (self.metrics_server, self.preview_server):
            if server is not None:
                server.close()
        self.metrics_server = self.preview_server = None
