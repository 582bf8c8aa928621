"""The launcher's report: stats lines become NodeStats, the status line, and a summary that names failures."""

from __future__ import annotations

import io

from streamfuse.config import synthetic_rig_config
from streamfuse.nodes.launcher.report import NodeRecord, NodeStats, build_summary, draw, format_summary, status_line


def test_stats_lines_become_node_stats_and_a_status_line() -> None:
    stats = NodeStats.from_event({"event": "stats", "node": "encode", "frames": 40, "fps": 29.5, "latency_ms": 61.2,
                                  "extra": 1})  # fmt: skip
    assert stats == NodeStats(frames=40, fps=29.5, latency_ms=61.2)
    nodes = {"encode": NodeRecord("encode", stats), "capture:color": NodeRecord("color", NodeStats(10, 7.5, dropped=3))}
    line = status_line(12.0, nodes, {"capture:color": 2})
    assert line == "  12.0s | encode 40f 29.5fps lat 61ms | capture:color 10f 7.5fps drop 3 restarts 2"
    out = io.StringIO()
    draw(out, line, 12.0, final=True)
    assert out.getvalue() == line + "\n"


def test_summary_counts_frames_of_lost_runs_and_names_a_failed_node(tmp_path, small_video) -> None:
    cfg = synthetic_rig_config((160, 120), engine="naive", output=str(tmp_path / "o.mp4"), video=small_video)
    nodes = {
        "encode": NodeRecord("encode", summary={"frames": [7], "outputs": ["o.mp4"], "fps": 10.0}, exit_code=0),
        "fuse": NodeRecord("fuse", exit_code=1, error="RuntimeError: engine exploded"),
        "capture:mono": NodeRecord("mono", summary={"sent": 5}, exit_code=0),
    }
    lost = {"capture:mono": [NodeRecord("mono", NodeStats(frames=3))]}
    s = build_summary(cfg, nodes, lost, {"capture:mono": 1}, [], "node fuse failed", 2.0)
    assert s["frames_in"] == 8 and s["frames_out"] == 7
    assert s["exit_codes"] == {"encode": 0, "fuse": 1, "capture:mono": 0}
    assert s["errors"] == {"fuse": "RuntimeError: engine exploded"}
    text = format_summary(s)
    assert "FAILED nodes   fuse (exit 1)" in text and "RuntimeError: engine exploded" in text
