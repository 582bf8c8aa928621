"""Run engines over the protocol cases and collect one JSON-ready record per (case, engine)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamfuse.engines import Engine, load_engine
from streamfuse.evaluation.case import Case
from streamfuse.evaluation.data import VIDEOS, data_dir, require
from streamfuse.evaluation.stereo import STEREO_SCALES, stereo_cases
from streamfuse.evaluation.stream import MAX_CLIPS as STREAM_MAX_CLIPS
from streamfuse.evaluation.stream import stream_records
from streamfuse.evaluation.video import MAX_CLIPS, video_cases
from streamfuse.metrics import score

PROTOCOLS = ("video", "stereo")
QUICK_CLIPS = 3  # clips per video in --quick mode
# The keys of every record, in order. Changing them breaks stored results: bump SCHEMA_VERSION.
RECORD_KEYS: tuple[str, ...] = (
    "protocol",
    "dataset",
    "case",
    "scale",
    "target",
    "engine",
    "psnr_rgb",
    "psnr_cbcr",
    "ssim",
    "ms",
)
SCHEMA_VERSION = 1


@dataclass
class EvalConfig:
    """What ``streamfuse eval`` runs."""

    protocols: tuple[str, ...] = PROTOCOLS
    engines: tuple[str, ...] = ("naive", "guided")
    data: Path | None = None  # None: the opencv-doc folder
    scales: tuple[float, ...] = (4, 8)  # video protocol scale gaps (the stereo protocol always uses 1 and 4)
    quick: bool = False
    engine_options: dict[str, dict] = field(default_factory=dict)  # engine name -> options


def protocol_list(text: str) -> tuple[str, ...]:
    """Parse ``video|stereo|all``."""
    if text == "all":
        return PROTOCOLS
    if text == "oldfilm":  # streamfuse.evaluation.oldfilm: damaged stills and clips, its own baselines and tables
        return ("oldfilm",)
    if text == "nir":  # streamfuse.evaluation.nir: its own data (shared/data/nir-train) and tables
        return ("nir",)
    if text == "scsr":  # streamfuse.evaluation.scsr: colorization + super-resolution, its own baselines and tables
        return ("scsr",)
    if text == "stream":  # streamfuse.evaluation.stream: every mono frame through open_stream(); not in "all"
        return ("stream",)
    if text not in PROTOCOLS:
        raise ValueError(f"unknown protocol {text!r}; choose video, stereo or all")
    return (text,)


def iter_cases(cfg: EvalConfig) -> Iterator[Case]:
    """Every case of the selected protocols, in a fixed order (videos first, then stereo pairs)."""
    folder = data_dir(cfg.data)
    max_clips = QUICK_CLIPS if cfg.quick else MAX_CLIPS
    if "video" in cfg.protocols:
        for name in VIDEOS:
            yield from video_cases(require(folder, name), cfg.scales, max_clips)
    if "stereo" in cfg.protocols:
        yield from stereo_cases(folder, STEREO_SCALES)


def scale_value(scale: float) -> int | float:
    """Scale gaps are stored as int when whole (4, not 4.0)."""
    return int(scale) if float(scale).is_integer() else float(scale)


def run_case(engine: Engine, name: str, case: Case) -> tuple[dict, np.ndarray]:
    """Colorize one case with a fresh reference state; returns the record and the output image."""
    start = time.perf_counter()
    out = engine.colorize(case.mono, engine.prepare_reference(case.ref))
    ms = (time.perf_counter() - start) * 1000.0
    metrics = score(out, case.truth)
    record = {
        "protocol": case.protocol,
        "dataset": case.dataset,
        "case": case.case,
        "scale": scale_value(case.scale),
        "target": case.target,
        "engine": name,
        **{k: round(v, 4) for k, v in metrics.items()},
        "ms": round(ms, 2),
    }
    return record, out


def run_eval(
    cfg: EvalConfig,
    on_result: Callable[[Case, dict, np.ndarray], None] | None = None,
    cases: Iterable[Case] | None = None,
) -> list[dict]:
    """Score every engine on every case; ``on_result`` sees each (case, record, output), e.g. to save images."""
    engines = {name: load_engine(name, **cfg.engine_options.get(name, {})) for name in cfg.engines}
    records = []
    for case in iter_cases(cfg) if cases is None else cases:
        for name, engine in engines.items():
            record, out = run_case(engine, name, case)
            records.append(record)
            if on_result is not None:
                on_result(case, record, out)
    if "stream" in cfg.protocols and cases is None:
        folder = data_dir(cfg.data)
        videos = [require(folder, name) for name in VIDEOS]
        clips = min(QUICK_CLIPS, STREAM_MAX_CLIPS) if cfg.quick else STREAM_MAX_CLIPS
        records += stream_records(engines, videos, clips, on_result=on_result)
    return records
