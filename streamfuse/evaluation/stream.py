"""The stream protocol (DESIGN §6): every mono frame in order through ``engine.open_stream()``, sparse references.

Clips are 13 consecutive frames with no scene cut, at most 6 per video, evenly spread (candidates at 0, 13, 26, …,
selected by ``streamfuse.data.video.select_clips``). In each setting (s, K) the colour camera delivers frame t
area-downsampled by s at t = 0, K, 2K, …, and the engine gets the BT.601 luma of every frame in order. Per clip:

- ``all``: chroma PSNR averaged over the 13 frames (the record's ``psnr_cbcr``);
- ``far``: chroma PSNR averaged over the frames K−1 after their reference (``psnr_cbcr_far``);
- ``tCE``: the RMS over frames (t ≥ 1) and pixels of ((out_t − out_t−1) − (gt_t − gt_t−1)) in CbCr, 0..255 units
  (flicker; lower is better).

Every metric excludes an 8-pixel border. A fresh stream is opened per clip and setting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamfuse.color import luma, rgb_diff_to_cbcr
from streamfuse.data.degrade import downsample
from streamfuse.data.video import STREAM_CLIP_LEN, frame_differences, read_clips, select_clips
from streamfuse.engines import Engine
from streamfuse.evaluation.case import Case
from streamfuse.metrics import BORDER, crop_border, psnr, psnr_cbcr

CLIP_LEN = STREAM_CLIP_LEN
MAX_CLIPS = 6
SETTINGS: tuple[tuple[int, int], ...] = ((4, 3), (4, 6), (8, 6))  # (scale gap s, reference period K)
STREAM_KEYS: tuple[str, ...] = ("psnr_cbcr_far", "tce")  # record keys beyond RECORD_KEYS


@dataclass(frozen=True)
class StreamClip:
    """One clip of the stream protocol: its dataset, id and 13 true colour frames (RGB uint8, cropped to ×8)."""

    dataset: str
    case: str
    frames: list[np.ndarray]


def stream_clips(path: str | Path, max_clips: int = MAX_CLIPS) -> Iterator[StreamClip]:
    """The selected clips of one video (two decoding passes; only the clips' frames are kept)."""
    diffs, count = frame_differences(path)
    starts = select_clips(diffs, count, CLIP_LEN, max_clips)
    for start, frames in read_clips(path, starts, CLIP_LEN).items():
        if len(frames) == CLIP_LEN:
            yield StreamClip(dataset=Path(path).stem, case=f"clip{start:04d}", frames=frames)


def far_frames(period: int, n: int = CLIP_LEN) -> list[int]:
    """Indices of the frames K−1 after their reference (K−1, 2K−1, …)."""
    return list(range(period - 1, n, period))


def run_stream(engine: Engine, frames: list[np.ndarray], scale: float, period: int) -> tuple[list[np.ndarray], float]:
    """Colorize a clip as a live rig would: references at t = 0, K, 2K, …, every mono frame in order.

    Returns the outputs and the wall time in ms per frame (reference preparation included).
    """
    stream = engine.open_stream()
    outputs = []
    start = time.perf_counter()
    for t, truth in enumerate(frames):
        if t % period == 0:
            stream.push_reference(downsample(truth, scale))
        outputs.append(stream.colorize(luma(truth)))
    return outputs, (time.perf_counter() - start) * 1000.0 / len(frames)


def temporal_chroma_error(outputs: list[np.ndarray], truths: list[np.ndarray], border: int = BORDER) -> float:
    """tCE: RMS of ((out_t − out_t−1) − (gt_t − gt_t−1)) in CbCr over frames t ≥ 1 and pixels (0..255 units)."""
    if len(outputs) < 2:
        raise ValueError("tCE needs at least two frames")
    total = 0.0
    count = 0
    for t in range(1, len(outputs)):
        a = crop_border(outputs[t], border).astype(np.float32) - crop_border(outputs[t - 1], border)
        b = crop_border(truths[t], border).astype(np.float32) - crop_border(truths[t - 1], border)
        d = rgb_diff_to_cbcr(a - b)
        total += float(np.sum(d.astype(np.float64) ** 2))
        count += d.size
    return math.sqrt(total / count)


def score_clip(outputs: list[np.ndarray], truths: list[np.ndarray], period: int) -> dict[str, float]:
    """The clip's metrics: all (psnr_cbcr), far (psnr_cbcr_far), tce, and the all-frame RGB PSNR.

    PSNR is averaged in dB over frames (the protocols' convention); an exact frame makes the mean +inf.
    """
    cbcr = [psnr_cbcr(o, g) for o, g in zip(outputs, truths, strict=True)]
    return {
        "psnr_rgb": float(np.mean([psnr(o, g) for o, g in zip(outputs, truths, strict=True)])),
        "psnr_cbcr": float(np.mean(cbcr)),
        "psnr_cbcr_far": float(np.mean([cbcr[t] for t in far_frames(period, len(truths))])),
        "tce": temporal_chroma_error(outputs, truths),
    }


def _scale_value(scale: float) -> int | float:
    return int(scale) if float(scale).is_integer() else float(scale)


def evaluate_clip(
    engines: dict[str, Engine],
    clip: StreamClip,
    settings: tuple[tuple[int, int], ...] = SETTINGS,
    on_result: Callable[[Case, dict, np.ndarray], None] | None = None,
) -> list[dict]:
    """One record per (setting, engine) of a clip; ``on_result`` sees the last far frame of each as a Case."""
    records = []
    for scale, period in settings:
        far_t = far_frames(period, len(clip.frames))[-1]
        for name, engine in engines.items():
            outputs, ms = run_stream(engine, clip.frames, scale, period)
            metrics = score_clip(outputs, clip.frames, period)
            record = {
                "protocol": "stream",
                "dataset": clip.dataset,
                "case": clip.case,
                "scale": _scale_value(scale),
                "target": f"K{period}",
                "engine": name,
                "psnr_rgb": round(metrics["psnr_rgb"], 4),
                "psnr_cbcr": round(metrics["psnr_cbcr"], 4),
                "ssim": None,  # not part of the stream protocol (13 frames x settings x engines would dominate)
                "ms": round(ms, 2),
                "psnr_cbcr_far": round(metrics["psnr_cbcr_far"], 4),
                "tce": round(metrics["tce"], 4),
            }
            records.append(record)
            if on_result is not None:
                truth = clip.frames[far_t]
                ref = downsample(clip.frames[far_t - far_t % period], scale)
                case = Case("stream", clip.dataset, clip.case, scale, record["target"], luma(truth), ref, truth)
                on_result(case, record, outputs[far_t])
    return records


def stream_records(
    engines: dict[str, Engine],
    videos: list[Path],
    max_clips: int = MAX_CLIPS,
    settings: tuple[tuple[int, int], ...] = SETTINGS,
    on_result: Callable[[Case, dict, np.ndarray], None] | None = None,
) -> list[dict]:
    """Every record of the stream protocol over ``videos``, in a fixed order (video, clip, setting, engine)."""
    records: list[dict] = []
    for path in videos:
        for clip in stream_clips(path, max_clips):
            records += evaluate_clip(engines, clip, settings, on_result)
    return records
