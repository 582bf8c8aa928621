"""RigObserver: what the launcher runs for --metrics-port, --preview-port and --trace."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("prometheus_client")
from streamfuse.config import synthetic_rig_config  # noqa: E402
from streamfuse.config.schema import ObserveConfig  # noqa: E402
from streamfuse.errors import ConfigError  # noqa: E402
from streamfuse.observe.rig import RigObserver, preview_folder, trace_part  # noqa: E402
from streamfuse.observe.trace import TraceRecorder  # noqa: E402


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_serves_metrics_and_preview_and_merges_the_trace(tmp_path: Path) -> None:
    cfg = synthetic_rig_config((160, 120))
    cfg.observe = ObserveConfig(metrics_port="0", preview_port="127.0.0.1:0", trace=str(tmp_path / "t.json"))
    rec = TraceRecorder(trace_part(cfg, tmp_path, "capture:mono"), "capture:mono")
    rec.span("capture", "mono", 0, 10, 20)
    rec.close()
    obs = RigObserver(cfg, tmp_path)
    try:
        obs.report("capture:mono", {"event": "stats", "frames": 12, "fps": 30.0, "dropped": 1})
        obs.report("fuse", {"event": "stats", "frames": 11, "rejected": 2, "stale_mono_dropped": 3})
        obs.restarted("capture:mono")
        assert 'streamfuse_frames_in_total{camera="mono"} 12.0' in fetch(obs.urls["metrics"])
        stats = json.loads(fetch(obs.urls["preview"] + "stats.json"))
        assert stats["cameras"] == ["mono"]
        assert stats["nodes"]["capture:mono"] == {
            "frames": 12, "fps": 30.0, "latency_ms": None, "dropped": 1, "rejected": 0, "restarts": 1
        }  # fmt: skip
        assert stats["nodes"]["fuse"]["dropped"] == 3 and stats["nodes"]["fuse"]["rejected"] == 2
    finally:
        done = obs.merge_trace()
        obs.close()
    assert done == {"trace": str(tmp_path / "t.json"), "trace_events": 1}


def test_nothing_is_started_unless_asked_for(tmp_path: Path) -> None:
    cfg = synthetic_rig_config((160, 120))
    obs = RigObserver(cfg, tmp_path)
    assert obs.urls == {} and obs.merge_trace() == {}
    obs.close()
    assert preview_folder(cfg, tmp_path) is None and trace_part(cfg, tmp_path, "fuse") is None


def test_a_bad_or_taken_port_is_a_config_error(tmp_path: Path) -> None:
    cfg = synthetic_rig_config((160, 120))
    cfg.observe = ObserveConfig(metrics_port="nine")
    with pytest.raises(ConfigError, match="observe.metrics_port"):
        RigObserver(cfg, tmp_path)
    first = RigObserver(synthetic_rig_config((160, 120)), tmp_path)
    cfg.observe = ObserveConfig(preview_port="0")
    taken = RigObserver(cfg, tmp_path)
    try:
        cfg.observe = ObserveConfig(preview_port=str(taken.preview_server.port))
        with pytest.raises(ConfigError, match="cannot listen"):
            RigObserver(cfg, tmp_path)
    finally:
        taken.close()
        first.close()
