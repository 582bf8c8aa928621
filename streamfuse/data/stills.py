"""Colour stills for training: the ones scikit-image, scikit-learn and opencv-doc ship, or files you name.

Benchmark files and every stereo pair a package ships are left out (``streamfuse.data.benchmark``): skimage's
``stereo_motorcycle`` and opencv-doc's ``left``/``right`` views are not training stills.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from streamfuse.data.benchmark import OPENCV_DATA, DataError, check_not_benchmark, is_benchmark

SKIMAGE_STILLS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "colorwheel",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)
VIDEO_FRAME_STEP = 15  # a video named as a still source gives every 15th frame


def colourful(rgb: np.ndarray) -> bool:
    """False for grey or nearly grey stills (chessboards, text) and small ones: they teach nothing about colour."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    return float(ycc[..., 1:].std()) > 4.0 and min(rgb.shape[:2]) >= 200


def package_stills(opencv_dir: Path | None = OPENCV_DATA) -> list[tuple[str, np.ndarray]]:
    """(source id, RGB uint8) colour stills from scikit-image, scikit-learn and opencv-doc; benchmark data excluded."""
    stills: list[tuple[str, np.ndarray]] = []
    try:
        import skimage.data as skd

        for name in SKIMAGE_STILLS:
            try:
                img = getattr(skd, name)()
            except Exception:  # noqa: BLE001 - a still that needs a download is skipped
                continue
            stills.append((f"skimage:{name}", np.ascontiguousarray(img[..., :3])))
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images

        data = load_sample_images()
        for fname, img in zip(data.filenames, data.images, strict=True):
            stills.append((f"sklearn:{Path(fname).name}", img))
    except ImportError:
        pass
    if opencv_dir is not None and opencv_dir.is_dir():
        for p in sorted(opencv_dir.iterdir()):
            if p.suffix.lower() not in (".jpg", ".png") or is_benchmark(p):
                continue
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                stills.append((f"opencv-doc:{p.name}", cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
    stills = [(n, s) for n, s in stills if colourful(s)]
    check_not_benchmark(n for n, _ in stills)
    return stills


def file_sources(paths: Iterable[str | Path]) -> list[tuple[str, np.ndarray]]:
    """Stills from image files, and every 15th frame of allow-listed videos; benchmark data is refused."""
    from streamfuse.data.video import check_training_video, iter_frames

    paths = [Path(p) for p in paths]
    check_not_benchmark(paths)
    out: list[tuple[str, np.ndarray]] = []
    for p in paths:
        if not p.is_file():
            raise DataError(f"source file not found: {p}")
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            out.append((str(p), cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
            continue
        check_training_video(p)
        frames = [(f"{p}#{i}", f) for i, f in enumerate(iter_frames(p)) if i % VIDEO_FRAME_STEP == 0]
        if not frames:
            raise DataError(f"cannot read {p} as an image or a video; give a JPEG/PNG still or a video file")
        out += frames
    return out
