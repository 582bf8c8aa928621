"""`streamfuse run`: launch and supervise the capture, fusion and encoder nodes of one host as real processes.

Each node is ``python -m streamfuse.nodes ROLE`` with the run's config handed over already validated
(``nodes.handoff``). Nodes report JSON lines on stdout; their log lines on stderr are passed through, and the
last error line of a node that fails is kept for the summary. The run ends:

- at the end of input: offline, when the mono stream has been fused and recorded; a node that finishes stops every
  node upstream of it that is still running (a longer colour file is not read to its end);
- on SIGINT/SIGTERM, a frame limit or a duration: the sources stop first, the frames in flight are finished;
- when a node fails: every node is stopped at once, the outputs are finalized, and the summary names the error.

In live mode a capture node that dies is restarted with exponential backoff; the fusion node rejoins its stream by
itself and reports the gap. Every wait is bounded (``DRAIN_S``, then ``KILL_S``): nothing hangs.
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

from streamfuse.config import RigConfig, load_config
from streamfuse.engines import available_engines
from streamfuse.errors import ConfigError
from streamfuse.nodes.__main__ import USER_ERROR_EXIT
from streamfuse.nodes.common import LAUNCHER_PID_ENV
from streamfuse.nodes.handoff import write_config
from streamfuse.nodes.launcher.report import Console, NodeRecord, NodeStats, as_console, build_summary
from streamfuse.nodes.ports import rig_cameras
from streamfuse.observe.rig import RigObserver

log = logging.getLogger("streamfuse.run")

STARTUP_S = 1.5  # live mode: frames are stamped from a shared epoch this far in the future, so every node is up
DRAIN_S = 30.0  # after a stop request: time for fusion and encoding to finish the frames in flight
KILL_S = 5.0  # after SIGINT to a node: time to finalize before it is killed
RESTART_FIRST_S = 0.5  # live mode: delay before the first restart of a dead capture node; doubles per restart
RESTART_MAX_S = 8.0  # largest restart delay
RESTART_RESET_S = 30.0  # a node that ran this long before dying starts again from the first delay
UPSTREAM = {"encode": ("fuse", "capture"), "fuse": ("capture",)}  # who feeds whom (by name prefix)


class _Child:
    """One node process: its stdout JSON reports and its stderr, read by two threads."""

    def __init__(
        self, name: str, argv: list[str], env: dict, on_report: Any = None, on_log: Any = None, own_group: bool = False
    ) -> None:
        self.name = name
        self.argv = argv
        self.on_report = on_report  # every report line also goes here (the observer: metrics, preview)
        self.on_log = on_log or sys.stderr.write  # the node's stderr lines (the console writes them above the status)
        # own_group (offline): a terminal's Ctrl-C reaches only the launcher, which stops the sources and lets
        # fusion and encoding finish every frame in flight; a SIGINT to every node at once would lose those frames.
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            process_group=0 if own_group else None,
        )
        self.started = time.monotonic()
        self.started_ns = time.time_ns()
        self.record = NodeRecord(name)
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._read_reports, self._pass_logs)]
        for thread in self.threads:
            thread.start()

    @property
    def stats(self) -> NodeStats:
        return self.record.stats

    @property
    def summary(self) -> dict[str, Any] | None:
        return self.record.summary

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.record.events

    def _read_reports(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            event = msg.get("event")
            if self.on_report is not None:
                self.on_report(msg.get("node", self.name), msg)
            if event == "summary":
                self.record.summary = msg
            elif event == "stats":
                self.record.stats = NodeStats.from_event(msg)
            else:
                self.record.events.append(msg)

    def _pass_logs(self) -> None:
        """Pass the node's log lines through to our stderr; keep its last error line."""
        for line in self.proc.stderr:
            self.on_log(line)
            text = line.strip()
            if ": error: " in text or (text and not line[0].isspace() and "Error" in text.split(":")[0]):
                self.record.error = text

    def poll(self) -> int | None:
        code = self.proc.poll()
        self.record.exit_code = code
        return code

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)
        self.poll()


class Launcher:
    """Runs one validated rig on this host (see the module docstring for how a run ends)."""

    def __init__(
        self,
        cfg: RigConfig,
        config_path: str | Path | None = None,
        frames: int | None = None,
        duration: float | None = None,
        status: TextIO | None = sys.stderr,
        observer: RigObserver | None = None,
    ) -> None:
        self.cfg = cfg
        self.observer = observer  # metrics, preview, trace; made from cfg.observe when not given (and closed here)
        self.config_path = Path(config_path) if config_path else None  # shown in `ps`; the config is not re-read
        self.frames = frames
        self.duration = duration
        self.status = status
        self.console: Console = as_console(status)  # status line and node logs, never on one line
        self.children: dict[str, _Child] = {}
        self._stop_reason: str | None = None
        self._run_dir = ""
        self._handoff = ""
        self._env: dict[str, str] = {}
        self.restarts: dict[str, int] = {}
        self._backoff: dict[str, int] = {}
        self._restart_due: dict[str, float] = {}
        self._dead: dict[str, list[_Child]] = {}
        self._restarted_ns: dict[str, list[int]] = {}
        self._released: set[str] = set()  # nodes stopped because the node they feed has finished

    def _argv(self, role: str, name: str | None, epoch_ns: int | None) -> list[str]:
        argv = [sys.executable, "-m", "streamfuse.nodes", role, "--config", self._handoff, "--run-dir", self._run_dir]
        if self.config_path is not None:
            argv += ["--rig-file", str(self.config_path)]
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
        own_observer = self.observer is None
        observer = self.observer = self.observer or RigObserver(self.cfg)  # a taken port fails before any node
        run_dir = self._run_dir = tempfile.mkdtemp(prefix="sf-")
        observer.use_run_dir(run_dir)
        observed: dict[str, Any] = dict(observer.urls)
        self._handoff = str(write_config(self.cfg, Path(run_dir) / "config.json"))
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", LAUNCHER_PID_ENV: str(os.getpid())}
        epoch_ns = time.time_ns() + int(STARTUP_S * 1e9)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        started = time.monotonic()
        try:
            with self.console.logs_above():
                self.children["encode"] = self._child("encode", self._argv("encode", None, epoch_ns))
                self.children["fuse"] = self._child("fuse", self._argv("fuse", None, epoch_ns))
                for cam in rig_cameras(self.cfg):
                    self.children[f"capture:{cam}"] = self._child(cam, self._argv("capture", cam, epoch_ns))
                try:
                    self._supervise(started)
                finally:
                    self._shutdown()
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            observed.update(observer.merge_trace())
            if own_observer:
                observer.close()
            shutil.rmtree(run_dir, ignore_errors=True)
        summary = self._summary(time.monotonic() - started)
        summary["observe"] = observed
        self.console.finish(summary)  # the last line shown is the summary's, not the last stats line
        return summary

    def _child(self, name: str, argv: list[str]) -> _Child:
        offline = self.cfg.mode == "offline"
        return _Child(name, argv, self._env, self.observer.report, self.console.log, own_group=offline)

    def _captures(self) -> list[_Child]:
        return [c for n, c in self.children.items() if n.startswith("capture:")]

    def _stop_upstream_of_finished(self) -> None:
        """A node that finished cleanly needs nothing more from upstream: stop what still runs there."""
        for name, child in self.children.items():
            if child.poll() != 0:
                continue
            for upstream, other in self.children.items():
                if upstream.startswith(UPSTREAM.get(name, ())) and upstream not in self._released:
                    if other.proc.poll() is None:
                        log.info("%s finished; stopping %s (nothing downstream needs its frames)", name, upstream)
                        other.signal(signal.SIGINT)
                    self._released.add(upstream)

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
            failed = [
                c.name for n, c in self.children.items() if c.poll() not in (None, 0) and n not in self._restart_due
            ]
            if failed and self._stop_reason is None:
                self._stop_reason = f"node {failed[0]} failed"
                log.error("node %s failed (exit status %s); stopping the run", failed[0], self._code_of(failed[0]))
                stopping_since = now
                for child in self.children.values():
                    child.signal(signal.SIGINT)  # every node finalizes what it has, now
            self._stop_upstream_of_finished()
            if all(c.poll() is not None for c in self.children.values()):
                break
            if stopping_since is not None and now - stopping_since > DRAIN_S:
                break
            if now - last_draw >= 0.5:
                self._draw(now - started)
                last_draw = now

    def _code_of(self, child_name: str) -> int | None:
        return next((c.proc.poll() for c in self.children.values() if c.name == child_name), None)

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
                self.observer.restarted(name)
                self.children[name] = self._child(child.name, self._argv("capture", child.name, None))
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
                child.proc.wait(KILL_S)
            child.join(timeout=2)

    def _draw(self, elapsed: float) -> None:
        self.console.update(elapsed, {name: child.record for name, child in self.children.items()}, self.restarts)

    def _summary(self, wall_s: float) -> dict:
        records = {name: child.record for name, child in self.children.items()}
        lost = {name: [c.record for c in dead] for name, dead in self._dead.items()}
        summary = build_summary(self.cfg, records, lost, self.restarts, self._rejoins(), self._stop_reason, wall_s)
        if self.config_path is not None:
            summary["config"] = str(self.config_path)
        return summary

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


def run_rig(
    config: RigConfig | str | Path,
    frames: int | None = None,
    duration: float | None = None,
    status: TextIO | None = sys.stderr,
    observer: RigObserver | None = None,
) -> dict:
    """Run a whole rig on this host and return its summary: the library entry point of `streamfuse run`.

    Args:
        config: a validated RigConfig (``load_config``, ``config_from_dict`` or a preset), or a rig.yaml path,
            which is loaded and validated here (nothing starts when it is wrong).
        frames: stop after this many mono frames.
        duration: stop after this many seconds.
        status: where the live status line goes (None: nowhere).
        observer: metrics, preview and trace of the run (``observe.rig.RigObserver``); by default one is made
            from ``config.observe`` and closed at the end. A caller's own stays serving after the run.

    Returns:
        The run summary (``report.build_summary``): frames in/out, fps, latency, drops, references, restarts,
        outputs, and ``exit_codes``/``errors`` per node (all zero on success).

    Raises:
        ConfigError: the config cannot start (unknown engine, an output folder that cannot be made).
    """
    if isinstance(config, RigConfig):
        cfg, path = config, (Path(config.source_file).resolve() if config.source_file else None)
    else:
        path = Path(config).resolve()
        cfg = load_config(config)
    check_startable(cfg)
    return Launcher(cfg, path, frames, duration, status, observer).run()


def run_pipeline(
    config: RigConfig, frames: int | None, status: TextIO | None = None, observer: RigObserver | None = None
) -> dict:
    """Run a config built in code for ``frames`` mono frames, quietly; ``run_rig`` with no status line."""
    return run_rig(config, frames=frames, status=status, observer=observer)


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
