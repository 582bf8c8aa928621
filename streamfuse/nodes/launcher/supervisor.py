"""`streamfuse run`: launch and supervise the capture, fusion and encoder nodes of one host as real processes.

Nodes report JSON lines on stdout; the launcher shows live per-stage fps, latency and drops, stops everything
cleanly on SIGINT/SIGTERM, a frame limit or a duration, and prints a run summary. In live mode a capture node that
dies is restarted with exponential backoff; the fusion node rejoins its stream by itself and reports the gap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from streamfuse.config import RigConfig, dump_config, load_config
from streamfuse.engines import available_engines
from streamfuse.errors import ConfigError
from streamfuse.nodes.common import LAUNCHER_PID_ENV

log = logging.getLogger("streamfuse.run")

STARTUP_S = 1.5  # live mode: frames are stamped from a shared epoch this far in the future, so every node is up
DRAIN_S = 30.0  # after the sources stop: time for fusion and encoding to finish the frames in flight
KILL_S = 5.0  # after SIGINT to a node: time to finalize before it is killed
RESTART_FIRST_S = 0.5  # live mode: delay before the first restart of a dead capture node; doubles per restart
RESTART_MAX_S = 8.0  # largest restart delay
USER_ERROR_EXIT = 2  # the exit status of a node stopped by a one-line user error (bad config, unreadable file)
RESTART_RESET_S = 30.0  # a node that ran this long before dying starts again from the first delay


class _Child:
    def __init__(self, name: str, argv: list[str], env: dict) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        self.started = time.monotonic()
        self.started_ns = time.time_ns()
        self.stats: dict[str, Any] = {}
        self.summary: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            event = msg.get("event")
            if event == "summary":
                self.summary = msg
            elif event == "stats":
                self.stats = msg
            else:
                self.events.append(msg)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)


class Launcher:
    """Runs one rig on this host."""

    def __init__(
        self,
        cfg: RigConfig,
        config_path: Path,
        frames: int | None = None,
        duration: float | None = None,
        status: TextIO | None = sys.stderr,
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.frames = frames
        self.duration = duration
        self.status = status
        self.children: dict[str, _Child] = {}
        self._stop_reason: str | None = None
        self._run_dir = ""
        self._env: dict[str, str] = {}
        self.restarts: dict[str, int] = {}
        self._backoff: dict[str, int] = {}
        self._restart_due: dict[str, float] = {}
        self._dead: dict[str, list[_Child]] = {}
        self._restarted_ns: dict[str, list[int]] = {}

    def _argv(self, role: str, run_dir: str, name: str | None, epoch_ns: int | None) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "streamfuse",
            "node",
            role,
            "--config",
            str(self.config_path),
            "--run-dir",
            run_dir,
            "--report",
        ]
        if name:
            argv += ["--name", name]
        if role == "capture" and epoch_ns is not None:  # a restarted camera keeps its own clock: frames from now
            argv += ["--epoch-ns", str(epoch_ns)]
        if role == "capture" and self.frames:
            argv += ["--frames", str(self.frames)]
        return argv

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop_reason = signal.Signals(signum).name

    def run(self) -> dict:
        """Start the nodes (downstream first), supervise them, and return the run summary."""
        run_dir = self._run_dir = tempfile.mkdtemp(prefix="sf-")
        env = self._env = {**os.environ, "PYTHONUNBUFFERED": "1", LAUNCHER_PID_ENV: str(os.getpid())}
        epoch_ns = time.time_ns() + int(STARTUP_S * 1e9)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        started = time.monotonic()
        try:
            self.children["encode"] = _Child("encode", self._argv("encode", run_dir, None, epoch_ns), env)
            self.children["fuse"] = _Child("fuse", self._argv("fuse", run_dir, None, epoch_ns), env)
            for cam in self.cfg.cameras:
                if cam == self.cfg.mono_camera or cam == self.cfg.color_cameras[0]:
                    self.children[f"capture:{cam}"] = _Child(cam, self._argv("capture", run_dir, cam, epoch_ns), env)
            self._supervise(started)
        finally:
            self._shutdown()
            for s, handler in old.items():
                signal.signal(s, handler)
            shutil.rmtree(run_dir, ignore_errors=True)
        return self._summary(time.monotonic() - started)

    def _captures(self) -> list[_Child]:
        return [c for n, c in self.children.items() if n.startswith("capture:")]

    def _supervise(self, started: float) -> None:
        last_draw = 0.0
        stopping_since: float | None = None
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            if self._stop_reason is None and self.duration is not None and now - started >= self.duration:
                self._stop_reason = "duration"
            if self._stop_reason and stopping_since is None:
                stopping_since = now
                log.info("stopping (%s): finishing the frames in flight", self._stop_reason)
                for child in self._captures():
                    child.signal(signal.SIGINT)
            if stopping_since is None and self.cfg.mode == "live":
                self._restart_dead_captures(now)
            if all(c.proc.poll() is not None for c in self.children.values()):
                break
            failed = [
                c.name
                for n, c in self.children.items()
                if c.proc.poll() not in (None, 0) and n not in self._restart_due
            ]
            if failed and stopping_since is None:
                self._stop_reason = f"node {failed[0]} failed"
            if stopping_since is not None and now - stopping_since > DRAIN_S:
                break
            if now - last_draw >= 0.5:
                self._draw(now - started)
                last_draw = now
        self._draw(time.monotonic() - started, final=True)

    def _restart_dead_captures(self, now: float) -> None:
        """Live mode: a capture node that crashed or was killed starts again after a backoff (0.5 s, 1 s ... 8 s)."""
        for name, child in list(self.children.items()):
            code = child.proc.poll()
            if not name.startswith("capture:") or code in (None, 0, USER_ERROR_EXIT):
                continue  # running, finished, or stopped on a user error that a restart would only repeat
            due = self._restart_due.get(name)
            if due is None:
                if now - child.started > RESTART_RESET_S:
                    self._backoff[name] = 0
                level = self._backoff.get(name, 0)
                delay = min(RESTART_FIRST_S * 2**level, RESTART_MAX_S)
                self._backoff[name] = level + 1
                self._restart_due[name] = now + delay
                log.warning("node %s died (exit status %s); restarting it in %.1f s", name, code, delay)
            elif now >= due:
                del self._restart_due[name]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self._dead.setdefault(name, []).append(child)
                argv = self._argv("capture", self._run_dir, child.name, None)
                self.children[name] = _Child(child.name, argv, self._env)
                self._restarted_ns.setdefault(name, []).append(self.children[name].started_ns)

    def _shutdown(self) -> None:
        """SIGINT every node that is still running, then kill what does not finalize in time."""
        for child in self.children.values():
            child.signal(signal.SIGINT)
        deadline = time.monotonic() + KILL_S
        for child in self.children.values():
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("node %s did not stop in %.0f s; killing it", child.name, KILL_S)
                child.proc.kill()
                child.proc.wait()
            child.thread.join(timeout=2)

    def _draw(self, elapsed: float, final: bool = False) -> None:
        if self.status is None:
            return
        parts = [f"{elapsed:6.1f}s"]
        for name, child in self.children.items():
            st = child.stats
            if not st:
                continue
            text = f"{name} {st.get('frames', 0)}f {st.get('fps', 0):.1f}fps"
            if "latency_ms" in st and st["latency_ms"] is not None:
                text += f" lat {st['latency_ms']:.0f}ms"
            if st.get("dropped"):
                text += f" drop {st['dropped']}"
            if st.get("rejected"):
                text += f" rej {st['rejected']}"
            if self.restarts.get(name):
                text += f" restarts {self.restarts[name]}"
            parts.append(text)
        line = " | ".join(parts)
        if self.status.isatty():
            self.status.write("\r\x1b[K" + line + ("\n" if final else ""))
        elif final or int(elapsed) % 5 == 0:
            self.status.write(line + "\n")
        self.status.flush()

    def _summary(self, wall_s: float) -> dict:
        summaries = {name: (c.summary or {}) for name, c in self.children.items()}
        fuse = summaries.get("fuse", {})
        enc = summaries.get("encode", {})
        caps = {n: s for n, s in summaries.items() if n.startswith("capture:")}
        mono = caps.get(f"capture:{self.cfg.mono_camera}", {})
        mono_lost_runs = self._dead.get(f"capture:{self.cfg.mono_camera}", [])
        frames_in = mono.get("sent", 0) + sum(c.stats.get("frames", 0) for c in mono_lost_runs)
        frames_out = (enc.get("frames") or [0])[0]
        return {
            "config": str(self.config_path),
            "engine": self.cfg.engine.name,
            "mode": self.cfg.mode,
            "stopped_by": self._stop_reason or "end of input",
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
            "restarts": dict(self.restarts),
            "rejoins": self._rejoins(),
            "outputs": enc.get("outputs", []),
            "cpu_ms_per_frame": {
                name: round(s["cpu_s"] * 1000 / frames_out, 2)
                for name, s in summaries.items()
                if s.get("cpu_s") is not None and frames_out
            },
            "exit_codes": {n: c.proc.returncode for n, c in self.children.items()},
        }

    def _rejoins(self) -> list[dict]:
        """Each stream the fusion node rejoined: the time without frames, and the time from the restart on."""
        fuse = self.children.get("fuse")
        rejoins = []
        for event in fuse.events if fuse else []:
            if event.get("event") != "rejoin":
                continue
            starts = [t for t in self._restarted_ns.get(f"capture:{event['link']}", []) if t <= event["wall_ns"]]
            after = round((event["wall_ns"] - max(starts)) / 1e6, 1) if starts else None
            rejoins.append({"link": event["link"], "gap_ms": event["gap_ms"], "after_restart_ms": after})
        return rejoins


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
    bad = {n: c for n, c in s["exit_codes"].items() if c != 0}
    if bad:
        lines.append(f"  FAILED nodes    {bad}")
    return "\n".join(lines)


def _rejoin_text(rejoins: list[dict]) -> str:
    if not rejoins:
        return "-"
    return ", ".join(
        f"{r['link']} after {r['gap_ms']:.0f} ms without frames"
        + (f" ({r['after_restart_ms']:.0f} ms after its restart)" if r["after_restart_ms"] is not None else "")
        for r in rejoins
    )


def run_rig(
    config_path: str | Path,
    frames: int | None = None,
    duration: float | None = None,
    status: TextIO | None = sys.stderr,
) -> dict:
    """Validate a rig.yaml (nothing starts if it is wrong), run it, and return the summary."""
    path = Path(config_path)
    cfg = load_config(path)
    check_startable(cfg)
    return Launcher(cfg, path.resolve(), frames, duration, status).run()


def run_pipeline(config: RigConfig, frames: int, status: TextIO | None = None) -> dict:
    """Run a config built in code (e.g. synthetic_rig_config) for ``frames`` mono frames; returns the summary."""
    check_startable(config)
    with tempfile.TemporaryDirectory(prefix="sf-cfg-") as tmp:
        path = Path(tmp) / "rig.yaml"
        dump_config(config, path)
        return Launcher(config, path, frames, None, status).run()


def check_startable(cfg: RigConfig) -> None:
    """Checks that need more than the schema: the engine exists and the outputs can be written."""
    if cfg.engine.name not in available_engines():
        raise ConfigError(
            f"{cfg.source_file}: key 'engine.name': unknown engine {cfg.engine.name!r}; "
            f"available: {', '.join(available_engines())}"
        )
    for i, out in enumerate(cfg.outputs):
        folder = Path(out.path).resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{cfg.source_file}: key 'outputs[{i}].path': cannot create {folder}: {exc}") from None
