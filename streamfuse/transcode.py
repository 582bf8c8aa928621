"""`streamfuse transcode`: a recorded mono video plus a colour video (or one image, or a folder of images) in,
one colorized video out, through the same capture, fusion and encoder nodes as a live rig, in file mode.

The run is lossless in frames (offline links never drop) and deterministic, and the output keeps the mono file's
timestamps, time base, start offset and frame rate, and a copy of its audio streams (``outputs[0].mux_from``).
A colour video shorter or longer than the mono one is handled by the rig's reference-age policy, and the
summary counts the frames whose reference was stale. Exit status: 0 done, 1 failed, 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from streamfuse import preflight  # noqa: F401 - registers the pre-launch checks run by config_from_dict
from streamfuse.config import RigConfig, config_from_dict, load_config
from streamfuse.errors import USER_ERRORS, ConfigError
from streamfuse.sources.video import is_image_file, probe_video

log = logging.getLogger("streamfuse.transcode")

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
SINGLE_REFERENCE_AGE_MS = 1e12  # one reference image is never stale: it is the reference of every frame
STALE_DECISIONS = ("fallback_last", "fallback_grey", "no_reference")


@dataclass
class TranscodeJob:
    """One transcode: the inputs, the output and the settings (what the command line gives)."""

    mono: str
    """Mono (or NIR) video; its timing and audio are kept."""
    output: str
    """Output video (.mp4 or .mkv)."""
    color: str | None = None
    """Colour video, folder of colour images, or one colour image (the same as ``ref``)."""
    ref: str | None = None
    """One colour reference image used for every frame (or a folder of images)."""
    engine: str | None = None
    """Engine name; default: the config's engine, else guided."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine options (added to the config's)."""
    config: str | None = None
    """Rig YAML whose sync, engine, encoder and limit settings are used (its cameras and outputs are replaced)."""
    on_corrupt: str = "fail"
    """fail: a damaged frame ends the run (exit 1); skip: damaged frames are dropped and counted."""


def _template(job: TranscodeJob) -> dict[str, Any]:
    """The settings taken from ``--config`` (sync, engine, encoder, limits), as plain YAML-able values."""
    if not job.config:
        return {}
    cfg = load_config(job.config)
    out = cfg.outputs[0]
    return {
        "sync": vars(cfg.sync).copy(),
        "engine": {"name": cfg.engine.name, "options": dict(cfg.engine.options)},
        "output": {"codec": out.codec, "crf": out.crf, "preset": out.preset, "keyframe_s": out.keyframe_s},
        "limits": vars(cfg.limits).copy(),
    }


def build_config(job: TranscodeJob) -> RigConfig:
    """The offline rig of a transcode: two file cameras, one output that keeps the mono file's timing and audio.

    Every pre-launch check runs here (files open and decode, sizes and scale gap fit, engine options, encoder
    settings), so nothing starts when one fails.
    """
    if (job.color is None) == (job.ref is None):
        raise ConfigError("give exactly one of --color (a video, image or folder) or --ref (an image)")
    colour = Path(job.color or job.ref).expanduser().resolve()
    single = colour.is_file() and is_image_file(colour)
    mono = Path(job.mono).expanduser().resolve()
    info = probe_video(mono)  # a missing, empty or undecodable mono file is named before anything else
    tpl = _template(job)
    engine = dict(tpl.get("engine", {"name": "guided", "options": {}}))
    if job.engine:
        engine = {"name": job.engine, "options": {} if job.engine != engine["name"] else engine["options"]}
    engine["options"] = {**engine["options"], **job.options}
    if job.ref and colour.is_dir() and str(engine["name"]).startswith("pikfix"):
        # Pik-Fix picks the most similar reference per shot from the folder itself (streamfuse.engines.retrieval);
        # the rig's colour camera then plays one of its images.
        engine["options"].setdefault("references", str(colour))
        colour = next((p for p in sorted(colour.iterdir()) if is_image_file(p)), None)
        if colour is None:
            raise ConfigError(f"--ref {job.ref}: the folder holds no images")
        single = True
    sync = dict(tpl.get("sync", {}))
    if single:
        sync.update(max_reference_age_ms=SINGLE_REFERENCE_AGE_MS, fallback="last")
    mono_fps = float(info.rate) if info.rate else 30.0
    data = {
        "name": "transcode",
        "mode": "offline",
        "cameras": {
            "mono": {
                "role": "mono",
                "source": "file",
                "path": str(mono),
                "fps": mono_fps,
                "on_corrupt": job.on_corrupt,
            },
            # an image folder plays at the mono rate: image k is the reference of mono frame k
            "color": {
                "role": "color",
                "source": "file",
                "path": str(colour),
                "fps": mono_fps,
                "on_corrupt": job.on_corrupt,
            },
        },
        "engine": engine,
        "outputs": [
            {"path": str(Path(job.output).expanduser().resolve()), "mux_from": str(mono), **tpl.get("output", {})}
        ],
    }
    if sync:
        data["sync"] = sync
    if "limits" in tpl:
        data["limits"] = tpl["limits"]
    return config_from_dict(data, name="streamfuse transcode", prelaunch=True)


def run_transcode(job: TranscodeJob, progress: TextIO | None = sys.stderr) -> dict[str, Any]:
    """Check, run and summarize one transcode; returns the summary with its ``exit_code`` (0, 1 or 130).

    Raises the pre-launch error (ConfigError, SourceError, ...) when a check fails: then nothing has started.
    ``progress``: where the progress bar goes (None: no bar).
    """
    from streamfuse.nodes.launcher import run_rig
    from streamfuse.nodes.launcher.report import ProgressConsole

    cfg = build_config(job)
    info = probe_video(cfg.cameras["mono"].path)
    total = info.estimated_frames(_duration_s(cfg.cameras["mono"].path))
    started = time.monotonic()
    rig = run_rig(cfg, status=ProgressConsole(total, progress) if progress is not None else None)
    return summarize(job, cfg, rig, total, time.monotonic() - started)


def _duration_s(path: str) -> float | None:
    import av

    with av.open(path) as container:
        return container.duration / 1e6 if container.duration else None


def summarize(job: TranscodeJob, cfg: RigConfig, rig: dict[str, Any], total: int | None, wall_s: float) -> dict:
    """The transcode's own summary (what a person and a script need) built on the run summary."""
    sync = rig.get("sync", {})
    out = Path(cfg.outputs[0].path)
    interrupted = rig["stopped_by"] in ("SIGINT", "SIGTERM")
    failed_nodes = {n: c for n, c in rig["exit_codes"].items() if c != 0}
    written = out.is_file() and rig["frames_out"] > 0
    complete = rig["frames_out"] == rig["frames_in"]
    if interrupted:
        code = EXIT_INTERRUPTED
    elif failed_nodes or not complete or not written:
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    return {
        "exit_code": code,
        "status": {EXIT_OK: "done", EXIT_FAILED: "failed", EXIT_INTERRUPTED: "interrupted"}[code],
        "mono": cfg.cameras["mono"].path,
        "color": cfg.cameras["color"].path,
        "output": str(out) if written else None,
        "engine": cfg.engine.name,
        "frames_total": total,
        "frames_in": rig["frames_in"],
        "frames_out": rig["frames_out"],
        "stale_reference_frames": rig.get("stale_reference_frames", sum(sync.get(k, 0) for k in STALE_DECISIONS)),
        "references": {k: v for k, v in sync.items() if v},
        "corrupt_frames_skipped": rig.get("corrupt_frames_skipped", 0),
        "on_corrupt": job.on_corrupt,
        "wall_s": round(wall_s, 2),
        "fps": round(rig["frames_out"] / wall_s, 2) if wall_s > 0 else None,
        "stopped_by": rig["stopped_by"],
        "failed_nodes": failed_nodes,
        "errors": rig.get("errors", {}),
        "run": rig,
    }


def format_summary(s: dict[str, Any]) -> str:
    """The summary as a few aligned lines a person reads at a glance."""
    refs = s["references"]
    fresh = refs.get("fresh", 0) + refs.get("reused", 0)
    total = f" (the mono file has {s['frames_total']})" if s["frames_total"] not in (None, s["frames_in"]) else ""
    if s["status"] == "failed" and s["failed_nodes"]:
        head = f"transcode failed: {s['frames_out']} frames written before the error{total}"
    else:
        head = f"transcode {s['status']}: {s['frames_out']} of {s['frames_in']} frames written{total}"
    lines = [
        head,
        f"  output       {s['output'] or 'none written'}",
        f"  engine       {s['engine']}  {s['fps'] or 0:.1f} fps  {s['wall_s']:.1f} s",
        f"  references   {refs.get('references_prepared', 0)} colour frames used; {fresh} frames with a current "
        f"reference, {s['stale_reference_frames']} with a stale one",
    ]
    if s["on_corrupt"] == "skip" or s["corrupt_frames_skipped"]:
        lines.append(f"  damaged      {s['corrupt_frames_skipped']} frames skipped (--on-corrupt {s['on_corrupt']})")
    if s["failed_nodes"]:
        lines.append(f"  failed       {', '.join(f'{n} (exit {c})' for n, c in s['failed_nodes'].items())}")
        lines += [f"               {name}: {error}" for name, error in s["errors"].items()]
    if s["status"] == "interrupted":
        lost = s["frames_in"] - s["frames_out"]
        kept = "every frame read was written" if not lost else f"{lost} frames read were not written"
        lines.append(f"  stopped by   {s['stopped_by']}: {kept}; the file is playable")
    return "\n".join(lines)


def main(args: Any) -> int:
    """The command: run, print the summary (and ``--json``), return the exit status."""
    job = TranscodeJob(
        mono=args.mono,
        output=args.output,
        color=args.color,
        ref=args.ref,
        engine=args.engine,
        options=args.options,
        config=args.config,
        on_corrupt=args.on_corrupt,
    )
    try:
        summary = run_transcode(job, progress=None if args.quiet else sys.stderr)
    except USER_ERRORS as exc:
        print(f"streamfuse transcode: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(format_summary(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary["exit_code"]
