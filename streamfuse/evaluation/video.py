"""The video protocol (CCDC, DESIGN §6): 7-frame clips, reference = frame 1 at 1/s, targets = frames 2 and 7.

Clip selection is fixed so results are comparable across engines and runs: frames are cropped to multiples of
8, candidate clips start at 0, 7, 14, …, clips holding a scene cut (mean |ΔY| > 30 between consecutive frames)
are dropped, and at most 20 survivors are kept at ``linspace(0, n-1, min(20, n)).round()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from streamfuse.color import luma
from streamfuse.data.degrade import downsample
from streamfuse.data.video import SCENE_CUT, crop8, frame_differences, read_clips, select_clips
from streamfuse.data.video import iter_frames as decode_frames
from streamfuse.evaluation.case import Case

CLIP_LEN = 7
MAX_CLIPS = 20
TARGETS: dict[str, int] = {"near": 1, "far": 6}  # frame 2 and frame 7 of a clip (1-based), as clip offsets
__all__ = [
    "CLIP_LEN",
    "MAX_CLIPS",
    "SCENE_CUT",
    "TARGETS",
    "clip_starts",
    "crop8",
    "frame_differences",
    "iter_frames",
    "load_clips",
    "video_cases",
]


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Every frame of a video as RGB uint8, cropped to multiples of 8 (the shared PyAV decoder)."""
    return decode_frames(path, multiple_of_8=True)


def clip_starts(mean_abs_dy: list[float] | np.ndarray, n_frames: int, max_clips: int = MAX_CLIPS) -> list[int]:
    """Start frames of the selected 7-frame clips (``streamfuse.data.video.select_clips``).

    Args:
        mean_abs_dy: mean |ΔY| between frame i and i+1, for i in 0..n_frames-2.
        n_frames: number of decoded frames.
        max_clips: how many surviving clips to keep at most (evenly spread over the survivors).
    """
    return select_clips(mean_abs_dy, n_frames, CLIP_LEN, max_clips)


def load_clips(path: str | Path, max_clips: int = MAX_CLIPS) -> dict[int, list[np.ndarray]]:
    """Selected clips of a video: start frame -> the clip's frames 1, 2 and 7 (two decoding passes, low memory)."""
    diffs, count = frame_differences(path)
    clips = read_clips(path, clip_starts(diffs, count, max_clips), CLIP_LEN)
    return {s: [frames[k] for k in (0, *TARGETS.values())] for s, frames in clips.items()}


def video_cases(path: str | Path, scales: tuple[float, ...], max_clips: int = MAX_CLIPS) -> Iterator[Case]:
    """Every (clip, scale, target) case of one video, in a fixed order."""
    dataset = Path(path).stem
    clips = load_clips(path, max_clips)
    for scale in scales:
        for start, (ref_frame, *targets) in clips.items():
            ref = downsample(ref_frame, scale)
            for (target, _), truth in zip(TARGETS.items(), targets, strict=True):
                yield Case(
                    protocol="video",
                    dataset=dataset,
                    case=f"clip{start:04d}",
                    scale=scale,
                    target=target,
                    mono=luma(truth),
                    ref=ref,
                    truth=truth,
                )
