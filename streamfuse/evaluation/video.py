"""The video protocol (CCDC, DESIGN §6): 7-frame clips, reference = frame 1 at 1/s, targets = frames 2 and 7.

Clip selection is fixed so results are comparable across engines and runs: frames are cropped to multiples of
8, candidate clips start at 0, 7, 14, …, clips holding a scene cut (mean |ΔY| > 30 between consecutive frames)
are dropped, and at most 20 survivors are kept at ``linspace(0, n-1, min(20, n)).round()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import luma
from streamfuse.degrade import downsample
from streamfuse.errors import SourceError
from streamfuse.evaluation.case import Case

CLIP_LEN = 7
SCENE_CUT = 30.0  # mean |ΔY| (0..255, OpenCV RGB2GRAY) between consecutive frames that marks a scene cut
MAX_CLIPS = 20
TARGETS: dict[str, int] = {"near": 1, "far": 6}  # frame 2 and frame 7 of a clip (1-based), as clip offsets


def crop8(frame: np.ndarray) -> np.ndarray:
    """Crop both sides down to multiples of 8 (top-left anchored)."""
    h, w = frame.shape[:2]
    return frame[: h - h % 8, : w - w % 8]


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode every frame of a video with OpenCV's VideoCapture as RGB uint8, cropped to multiples of 8."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"cannot open video {path}: missing file or a format OpenCV cannot decode")
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            yield cv2.cvtColor(crop8(bgr), cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def clip_starts(mean_abs_dy: list[float] | np.ndarray, n_frames: int, max_clips: int = MAX_CLIPS) -> list[int]:
    """Start frames of the selected clips.

    Args:
        mean_abs_dy: mean |ΔY| between frame i and i+1, for i in 0..n_frames-2.
        n_frames: number of decoded frames.
        max_clips: how many surviving clips to keep at most (evenly spread over the survivors).
    """
    diffs = np.asarray(mean_abs_dy, dtype=np.float64)
    survivors = [
        s for s in range(0, n_frames - CLIP_LEN + 1, CLIP_LEN) if not np.any(diffs[s : s + CLIP_LEN - 1] > SCENE_CUT)
    ]
    n = len(survivors)
    if n == 0:
        return []
    picks = np.linspace(0, n - 1, min(max_clips, n)).round().astype(int)
    return [survivors[i] for i in picks]


def frame_differences(path: str | Path) -> tuple[list[float], int]:
    """Mean |ΔY| between consecutive frames of a video and its frame count (first decoding pass)."""
    diffs: list[float] = []
    prev = None
    count = 0
    for frame in iter_frames(path):
        y = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.int16)
        if prev is not None:
            diffs.append(float(np.mean(np.abs(y - prev))))
        prev = y
        count += 1
    return diffs, count


def load_clips(path: str | Path, max_clips: int = MAX_CLIPS) -> dict[int, list[np.ndarray]]:
    """Selected clips of a video: start frame -> the clip's frames 1, 2 and 7 (two decoding passes, low memory)."""
    diffs, count = frame_differences(path)
    starts = clip_starts(diffs, count, max_clips)
    wanted = {s + k: s for s in starts for k in (0, *TARGETS.values())}
    clips: dict[int, list[np.ndarray]] = {s: [] for s in starts}
    for i, frame in enumerate(iter_frames(path)):
        if i in wanted:
            clips[wanted[i]].append(frame)
    return clips


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
