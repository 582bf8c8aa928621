"""``streamfuse transcode --batch jobs.yaml [--cluster auto|ADDRESS]``: many mono/colour pairs, locally or on Ray.

Each job is one single-job transcode. With Ray (the optional ``[cluster]`` extra) every job is a Ray task that
declares its resources (CPUs, and a GPU for TensorRT engines), so a cluster packs them onto its nodes; without Ray,
or without ``--cluster``, the jobs run here one after another. A job that fails is retried (``retries`` times), then
reported with its error; the others go on. The outputs manifest records what was done (inputs, settings, output
sha256, frames, attempts, seconds, host) after every job, so a re-run skips the jobs that are finished and
unchanged and an interrupted batch loses at most the jobs in flight.

``jobs.yaml``::

    retries: 1                      # attempts after the first one
    manifest: out/batch.json        # default: batch-manifest.json next to jobs.yaml
    defaults: {engine: guided}
    jobs:
      - {name: cam1, mono: rec/cam1_mono.mp4, color: rec/cam1_color.mp4, output: out/cam1.mp4}
      - {name: still, mono: rec/old.mp4, ref: rec/ref.png, output: out/old.mp4, cpus: 2}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamfuse.checksum import sha256_file
from streamfuse.config.loader import load_yaml_dataclass
from streamfuse.errors import ConfigError

log = logging.getLogger("streamfuse.batch")

MANIFEST_VERSION = 1
FAIL_ONCE_ENV = "STREAMFUSE_FAULT_BATCH_FAIL_ONCE"  # fault hook for tests: job names whose first attempt fails


@dataclass
class JobDefaults:
    """Settings every job gets unless it names its own."""

    engine: str | None = None
    """Engine registry name; default: the rig YAML's engine (config), else guided."""
    options: dict[str, object] = field(default_factory=dict)
    """Engine options."""
    config: str | None = field(default=None, metadata={"path": "file"})
    """Rig YAML whose sync, engine and encoder settings the jobs use (as `streamfuse transcode --config`)."""
    cpus: float = 1.0
    """CPUs a job reserves on the cluster."""
    gpus: float | None = None
    """GPUs a job reserves; default 1 for a TensorRT backend (options.backend: tensorrt), else 0."""


@dataclass
class BatchJob:
    """One mono/colour pair to transcode."""

    name: str
    """Unique job name (the key in the manifest)."""
    mono: str = field(metadata={"path": "file"})
    """Mono (or NIR) video."""
    output: str
    """Output video, relative to jobs.yaml."""
    color: str | None = field(default=None, metadata={"path": "file"})
    """Colour video (give this or ref)."""
    ref: str | None = field(default=None, metadata={"path": "any"})
    """Colour reference image or folder of images (give this or color)."""
    engine: str | None = None
    """Engine; default: defaults.engine."""
    options: dict[str, object] | None = None
    """Engine options; default: defaults.options."""
    config: str | None = field(default=None, metadata={"path": "file"})
    """Rig YAML; default: defaults.config."""
    cpus: float | None = None
    """CPUs to reserve; default: defaults.cpus."""
    gpus: float | None = None
    """GPUs to reserve; default: defaults.gpus."""


@dataclass
class BatchFile:
    """A jobs.yaml file."""

    jobs: list[BatchJob]
    """The jobs, run in this order locally."""
    defaults: JobDefaults = field(default_factory=JobDefaults)
    """Settings shared by the jobs."""
    retries: int = 1
    """How many times a failed job is tried again before it is reported as failed."""
    manifest: str | None = None
    """Outputs manifest (JSON), relative to jobs.yaml; default: batch-manifest.json beside it."""


@dataclass
class Job:
    """A job with its defaults applied and its paths resolved: what a runner gets."""

    name: str
    mono: str
    output: str
    color: str | None
    ref: str | None
    engine: str | None
    options: dict[str, Any]
    config: str | None
    cpus: float
    gpus: float

    def fingerprint(self) -> str:
        """Changes when the job's settings or its input files change (size and modification time)."""
        stamp = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("cpus", "gpus")}
        for key in ("mono", "color", "ref", "config"):
            path = stamp[key]
            if path and Path(path).exists():
                st = Path(path).stat()
                stamp[key] = [path, st.st_size, st.st_mtime_ns]
        return hashlib.sha256(json.dumps(stamp, sort_keys=True, default=str).encode()).hexdigest()


def load_batch(path: str | Path) -> tuple[list[Job], BatchFile, Path]:
    """Read and check jobs.yaml; returns the resolved jobs, the file and the manifest path."""
    path = Path(path)
    batch = load_yaml_dataclass(path.resolve(), BatchFile)  # absolute paths: jobs may run in other folders
    base = path.resolve().parent
    d = batch.defaults
    jobs, seen = [], set()
    if batch.retries < 0:
        raise ConfigError(f"{path}: key 'retries' must be >= 0, got {batch.retries}")
    for i, j in enumerate(batch.jobs):
        if j.name in seen:
            raise ConfigError(f"{path}: key 'jobs[{i}].name': job name {j.name!r} is used twice; names must be unique")
        seen.add(j.name)
        if (j.color is None) == (j.ref is None):
            raise ConfigError(f"{path}: key 'jobs[{i}]': give exactly one of color (a video) or ref (an image)")
        options = dict(d.options if j.options is None else j.options)
        gpus = j.gpus if j.gpus is not None else d.gpus
        if gpus is None:
            gpus = 1.0 if options.get("backend") == "tensorrt" else 0.0
        out = Path(j.output).expanduser()
        jobs.append(
            Job(
                name=j.name,
                mono=j.mono,
                output=str(out if out.is_absolute() else base / out),
                color=j.color,
                ref=j.ref,
                engine=j.engine or d.engine,
                options=options,
                config=j.config or d.config,
                cpus=float(j.cpus if j.cpus is not None else d.cpus),
                gpus=float(gpus),
            )
        )
    manifest = Path(batch.manifest).expanduser() if batch.manifest else Path("batch-manifest.json")
    return jobs, batch, manifest if manifest.is_absolute() else base / manifest


# --- the runner seam ---------------------------------------------------------------------------------------

Runner = Callable[[Job], dict]
"""Runs one job to completion and returns its summary (at least ``frames_out``); raises on failure."""


def transcode_job(job: Job) -> dict:
    """The default runner: the single-job `streamfuse transcode` of one pair (same checks, nodes and summary)."""
    from streamfuse.transcode import TranscodeJob, run_transcode

    single = TranscodeJob(
        mono=job.mono,
        output=job.output,
        color=job.color,
        ref=job.ref,
        engine=job.engine,
        options=dict(job.options),
        config=job.config,
    )
    summary = run_transcode(single, progress=None)
    if summary["exit_code"] != 0:
        raise RuntimeError(
            f"job {job.name}: transcode {summary['status']} ({summary['frames_out']} of {summary['frames_in']} "
            f"frames; stopped by {summary['stopped_by']}; failed nodes {summary['failed_nodes'] or 'none'})"
        )
    return summary


def _attempt(runner: Runner, job: Job, attempt: int, marker_dir: str) -> dict:
    """One attempt of one job (runs here or in a Ray worker): the runner's summary plus timing and host."""
    if job.name in os.environ.get(FAIL_ONCE_ENV, "").split(","):
        marker = Path(marker_dir) / f".{job.name}.failed-once"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            raise RuntimeError(f"fault hook {FAIL_ONCE_ENV}: job {job.name} fails its first attempt")
    started = time.monotonic()
    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    summary = runner(job)
    return {
        "frames_out": summary.get("frames_out"),
        "seconds": round(time.monotonic() - started, 2),
        "host": socket.gethostname(),
        "attempt": attempt,
    }


# --- the manifest -----------------------------------------------------------------------------------------


class Manifest:
    """The outputs manifest: one record per job, rewritten atomically after every job."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.jobs: dict[str, dict] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
                self.jobs = dict(data.get("jobs", {}))
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s is not a batch manifest; starting a new one", path)

    def finished(self, job: Job) -> bool:
        """Done before with the same settings and inputs, and the output is still the file that was written."""
        rec = self.jobs.get(job.name)
        if not rec or rec.get("status") != "done" or rec.get("fingerprint") != job.fingerprint():
            return False
        out = Path(job.output)
        return out.is_file() and sha256_file(out) == rec.get("output_sha256")

    def record(self, job: Job, status: str, **fields: Any) -> None:
        rec = {"status": status, "fingerprint": job.fingerprint(), **dataclasses.asdict(job), **fields}
        if status == "done":
            rec["output_sha256"] = sha256_file(job.output)
        self.jobs[job.name] = rec
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"version": MANIFEST_VERSION, "jobs": self.jobs}, indent=1) + "\n")
        os.replace(tmp, self.path)


# --- running ----------------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What a batch did: job names by outcome, and the manifest that records them."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    manifest: str = ""
    cluster: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


def run_batch(
    path: str | Path, cluster: str | None = None, runner: Runner | None = None, ray_init: dict | None = None
) -> BatchResult:
    """Run every unfinished job of jobs.yaml: as Ray tasks when ``cluster`` is given ("auto" or an address),
    otherwise one after another here. ``ray_init`` adds keyword arguments to ``ray.init`` (e.g. num_cpus)."""
    jobs, batch, manifest_path = load_batch(path)
    manifest = Manifest(manifest_path)
    result = BatchResult(manifest=str(manifest_path), cluster=cluster)
    todo = []
    for job in jobs:
        if manifest.finished(job):
            result.skipped.append(job.name)
        else:
            todo.append(job)
    if result.skipped:
        log.info("skipping %d finished job(s): %s", len(result.skipped), ", ".join(result.skipped))
    runner = runner or transcode_job
    marker_dir = str(manifest_path.parent)
    if cluster and todo:
        _run_on_ray(todo, batch.retries, runner, manifest, result, cluster, marker_dir, ray_init or {})
    else:
        for job in todo:
            for attempt in range(1, batch.retries + 2):
                try:
                    _finish(manifest, result, job, _attempt(runner, job, attempt, marker_dir))
                    break
                except Exception as exc:  # noqa: BLE001 - a job's failure is reported, the batch goes on
                    if not _failed(manifest, result, job, attempt, batch.retries, exc):
                        break
    return result


def _finish(manifest: Manifest, result: BatchResult, job: Job, info: dict) -> None:
    result.done.append(job.name)
    result.attempts[job.name] = info["attempt"]
    manifest.record(job, "done", **info)
    log.info(
        "job %s done (%s frames, %.1f s, attempt %d)", job.name, info["frames_out"], info["seconds"], info["attempt"]
    )


def _failed(manifest: Manifest, result: BatchResult, job: Job, attempt: int, retries: int, exc: BaseException) -> bool:
    """Log a failed attempt; returns whether the job gets another one (else it is reported as failed)."""
    error = _error_line(exc)
    if attempt <= retries:
        log.warning("job %s failed (attempt %d of %d): %s; retrying", job.name, attempt, retries + 1, error)
        return True
    log.error("job %s failed after %d attempt(s): %s", job.name, attempt, error)
    result.failed[job.name] = error
    result.attempts[job.name] = attempt
    manifest.record(job, "failed", error=error, attempt=attempt)
    return False


def _error_line(exc: BaseException) -> str:
    """The innermost error of a (possibly Ray-wrapped) exception, as one line."""
    cause = getattr(exc, "cause", None) or exc  # RayTaskError keeps the task's own exception as .cause
    text = str(cause).strip().splitlines()
    return (
        f"{type(cause).__name__}: {text[-1] if text else ''}"
        if text
        else "".join(traceback.format_exception_only(cause)).strip()
    )


def _run_on_ray(
    todo: list[Job],
    retries: int,
    runner: Runner,
    manifest: Manifest,
    result: BatchResult,
    cluster: str,
    marker_dir: str,
    ray_init: dict,
) -> None:
    """Submit every job as a Ray task with its resources; retry failures; record each outcome as it lands."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--cluster needs Ray: pip install 'streamfuse[cluster]' (or drop --cluster to run locally)"
        ) from None
    init = {"address": None if cluster == "local" else cluster, "include_dashboard": False, "log_to_driver": False}
    env = {k: os.environ[k] for k in (FAIL_ONCE_ENV,) if k in os.environ}
    if env:
        init["runtime_env"] = {"env_vars": env}
    init.update(ray_init)
    if init["address"] is None:
        init.pop("address")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(**init)
    try:
        task = ray.remote(_attempt)
        pending: dict[Any, tuple[Job, int]] = {}

        def submit(job: Job, attempt: int) -> None:
            ref = task.options(num_cpus=job.cpus, num_gpus=job.gpus, max_retries=1, name=f"transcode:{job.name}")
            pending[ref.remote(runner, job, attempt, marker_dir)] = (job, attempt)

        for job in todo:
            submit(job, 1)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job, attempt = pending.pop(ready[0])
            try:
                _finish(manifest, result, job, ray.get(ready[0]))
            except Exception as exc:  # noqa: BLE001 - reported per job
                if _failed(manifest, result, job, attempt, retries, exc):
                    submit(job, attempt + 1)
    finally:
        if started_here:
            ray.shutdown()


def format_result(result: BatchResult) -> str:
    """The batch summary for a person."""
    lines = [
        f"batch: {len(result.done)} done, {len(result.skipped)} skipped (finished before), {len(result.failed)} failed"
        + (f"  (on Ray: {result.cluster})" if result.cluster else "  (locally)"),
    ]
    lines += [f"  FAILED {name}: {error}" for name, error in result.failed.items()]
    retried = {n: a for n, a in result.attempts.items() if a > 1}
    if retried:
        lines.append("  retried " + ", ".join(f"{n} ({a} attempts)" for n, a in retried.items()))
    lines.append(f"  manifest {result.manifest}")
    return "\n".join(lines)
