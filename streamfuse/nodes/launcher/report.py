"""What a run shows a person: the live status line, the run summary (a dict, also written as JSON) and its text.

The supervisor owns the processes; this module only turns what they reported into words and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TextIO

from streamfuse.config.schema import RigConfig


@dataclass
class NodeStats:
    """The newest ``stats`` line of one node (the fields the status line shows; all optional)."""

    frames: int = 0
    fps: float = 0.0
    latency_ms: float | None = None
    dropped: int = 0
    rejected: int = 0
    engine_ms: float | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> NodeStats:
        """Read a node's stats line; unknown keys are ignored, missing ones keep their defaults."""
        known = {k: event[k] for k in cls.__dataclass_fields__ if event.get(k) is not None}
        return cls(**known)


@dataclass
class NodeRecord:
    """What one node process left behind: its name, its last stats and summary, and how it ended."""

    name: str
    stats: NodeStats = field(default_factory=NodeStats)
    summary: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    error: str | None = None
    """The node's last error line on stderr (a user error, or the last line of a traceback)."""


def status_line(elapsed: float, nodes: dict[str, NodeRecord], restarts: dict[str, int]) -> str:
    """One line: per node frames, fps, latency, drops, rejects and restarts."""
    parts = [f"{elapsed:6.1f}s"]
    for name, node in nodes.items():
        st = node.stats
        if not st.frames and not st.fps:
            continue
        text = f"{name} {st.frames}f {st.fps:.1f}fps"
        if st.latency_ms is not None:
            text += f" lat {st.latency_ms:.0f}ms"
        if st.dropped:
            text += f" drop {st.dropped}"
        if st.rejected:
            text += f" rej {st.rejected}"
        if restarts.get(name):
            text += f" restarts {restarts[name]}"
        parts.append(text)
    return " | ".join(parts)


def draw(stream: TextIO | None, line: str, elapsed: float, final: bool = False) -> None:
    """Show the status line: redrawn in place on a terminal, every 5 s (and at the end) otherwise."""
    if stream is None:
        return
    if stream.isatty():
        stream.write("\r\x1b[K" + line + ("\n" if final else ""))
    elif final or int(elapsed) % 5 == 0:
        stream.write(line + "\n")
    stream.flush()


def build_summary(
    cfg: RigConfig,
    nodes: dict[str, NodeRecord],
    lost_runs: dict[str, list[NodeRecord]],
    restarts: dict[str, int],
    rejoins: list[dict],
    stopped_by: str | None,
    wall_s: float,
) -> dict:
    """The run summary from every node's report (``lost_runs``: earlier runs of restarted nodes)."""
    summaries = {name: (n.summary or {}) for name, n in nodes.items()}
    fuse = summaries.get("fuse", {})
    enc = summaries.get("encode", {})
    caps = {n: s for n, s in summaries.items() if n.startswith("capture:")}
    mono = caps.get(f"capture:{cfg.mono_camera}", {})
    lost = lost_runs.get(f"capture:{cfg.mono_camera}", [])
    frames_in = mono.get("sent", 0) + sum(n.stats.frames for n in lost)
    frames_out = (enc.get("frames") or [0])[0]
    return {
        "config": cfg.source_file,
        "engine": cfg.engine.name,
        "mode": cfg.mode,
        "stopped_by": stopped_by or "end of input",
        "wall_s": round(wall_s, 2),
        "frames_in": frames_in,
        "frames_out": frames_out,
        "e2e_fps": enc.get("fps"),
        "fuse_fps": fuse.get("fps"),
        "engine_ms_p50": fuse.get("engine_ms_p50"),
        "latency_p50_ms": enc.get("latency_ms_p50"),
        "latency_p99_ms": enc.get("latency_ms_p99"),
        "psnr_cbcr": fuse.get("psnr_cbcr"),
        "capture_dropped": sum(s.get("dropped", 0) for s in caps.values()),
        "fuse_stale_dropped": fuse.get("stale_mono_dropped", 0),
        "fuse_output_dropped": fuse.get("output_dropped", 0),
        "rejected": fuse.get("rejected", {}),
        "sync": fuse.get("sync", {}),
        "seq": fuse.get("seq", {}),
        "links": fuse.get("links", {}),
        "restarts": dict(restarts),
        "rejoins": rejoins,
        "outputs": enc.get("outputs", []),
        "cpu_ms_per_frame": {
            name: round(s["cpu_s"] * 1000 / frames_out, 2)
            for name, s in summaries.items()
            if s.get("cpu_s") is not None and frames_out
        },
        "exit_codes": {n: r.exit_code for n, r in nodes.items()},
        "errors": {n: r.error for n, r in nodes.items() if r.error and r.exit_code not in (0, None)},
        "cameras": camera_summary(cfg, summaries, lost_runs),
    }


def camera_summary(cfg: RigConfig, summaries: dict[str, dict], lost_runs: dict[str, list[NodeRecord]]) -> dict:
    """Every camera of the rig: role, partner, frames sent and dropped (restarts included), and for a mono camera
    its frames recorded, capture->encode latency and, live, its clock drift."""
    fuse, enc = summaries.get("fuse", {}), summaries.get("encode", {})
    drift = fuse.get("drift_ppm", {})
    cameras = {}
    for name, cam in cfg.cameras.items():
        cap = summaries.get(f"capture:{name}", {})
        lost = lost_runs.get(f"capture:{name}", [])
        entry = {
            "role": cam.role,
            "sent": cap.get("sent", 0) + sum(n.stats.frames for n in lost),
            "dropped": cap.get("dropped", 0),
            "drift_ppm": drift.get(name),
        }
        if name in cfg.mono_cameras:
            outs = [o for o in enc.get("by_output", []) if o["camera"] == name]
            entry["partner"] = cfg.partner_of(name)
            entry["frames_out"] = outs[0]["frames"] if outs else 0
            entry["latency_p50_ms"] = outs[0]["latency_ms_p50"] if outs else None
        cameras[name] = entry
    return cameras


def format_summary(s: dict) -> str:
    """The run summary as aligned text."""

    def num(v: Any, unit: str = "", fmt: str = "{:.1f}") -> str:
        return "n/a" if v is None else fmt.format(v) + unit

    lines = [
        f"run summary ({s['mode']}, engine {s['engine']}, stopped by {s['stopped_by']}, {s['wall_s']} s)",
        f"  frames          in {s['frames_in']}  out {s['frames_out']}",
        f"  throughput      end-to-end {num(s['e2e_fps'], ' fps')}  fusion {num(s['fuse_fps'], ' fps')}"
        f"  engine p50 {num(s['engine_ms_p50'], ' ms')}",
        f"  latency         capture->encode p50 {num(s['latency_p50_ms'], ' ms')}"
        f"  p99 {num(s['latency_p99_ms'], ' ms')}",
        f"  drops           capture {s['capture_dropped']}  stale mono {s['fuse_stale_dropped']}"
        f"  output {s['fuse_output_dropped']}  rejected {sum(s['rejected'].values())} {s['rejected'] or ''}",
        f"  references      {s['sync'] or {}}",
        f"  faults          restarts {s['restarts'] or 0}  rejoined {_rejoin_text(s['rejoins'])}",
        f"  quality         chroma PSNR vs ground truth {num(s['psnr_cbcr'], ' dB', '{:.2f}')}",
        f"  outputs         {', '.join(s['outputs']) or 'none'}",
    ]
    if len(s.get("cameras", {})) > 2 or any(c.get("drift_ppm") for c in s.get("cameras", {}).values()):
        lines.append("  cameras         " + "  ".join(_camera_text(n, c) for n, c in s["cameras"].items()))
    bad = {n: c for n, c in s["exit_codes"].items() if c != 0}
    if bad:
        lines.append(f"  FAILED nodes    {bad}")
        lines += [f"    {name}: {error}" for name, error in s.get("errors", {}).items()]
    return "\n".join(lines)


def _camera_text(name: str, c: dict) -> str:
    text = f"{name} ({c['role']}) sent {c['sent']}"
    if "frames_out" in c:
        text += f" out {c['frames_out']} via {c['partner']}"
    if c.get("dropped"):
        text += f" drop {c['dropped']}"
    if c.get("drift_ppm") is not None:
        text += f" drift {c['drift_ppm']:+.0f} ppm"
    return text + ";"


def _rejoin_text(rejoins: list[dict]) -> str:
    if not rejoins:
        return "-"
    return ", ".join(
        f"{r['link']} after {r['gap_ms']:.0f} ms without frames"
        + (f" ({r['after_restart_ms']:.0f} ms after its restart)" if r["after_restart_ms"] is not None else "")
        for r in rejoins
    )
