"""The one benchmark exclusion list: files that are scored on and therefore never trained on (DESIGN §6).

The public benchmark is the opencv-doc videos and its stereo/flow pairs; every other two-view pair a package
ships (skimage's ``stereo_motorcycle``, opencv-doc's ``left*/right*`` calibration views, ...) counts as benchmark
data too. Names match case-insensitively on the file name, so a path (``/usr/.../vtest.avi``), a source id
(``opencv-doc:aloeL.jpg``, ``skimage:stereo_motorcycle``) or a frame id (``.../Megamind.avi#12``) all match.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mpg", ".mpeg", ".mkv", ".webm", ".m4v", ".ogv", ".wmv")

# The opencv-doc videos: the video and stream protocols score on them.
BENCHMARK_VIDEOS: tuple[str, ...] = ("vtest.avi", "megamind*.avi", "tree.avi")
# Stereo and flow pairs that packages ship: the stereo protocol's (aloe, rubberwhale) and every other one.
STEREO_PAIRS: tuple[str, ...] = (
    "aloe*",
    "rubberwhale*",
    "basketball[12].*",
    "left.*",
    "right.*",
    "left[0-9][0-9].*",
    "right[0-9][0-9].*",
    "blender_suzanne[12].*",
    "stereo_motorcycle*",
)
BENCHMARK_EXCLUDE: tuple[str, ...] = BENCHMARK_VIDEOS + STEREO_PAIRS


class DataError(ValueError):
    """Bad data-making input (a benchmark file, a missing source or package); the message names it and the fix."""


def source_name(source: str | Path) -> str:
    """The lower-case file name a source id refers to (``opencv-doc:aloeL.jpg#3`` -> ``aloel.jpg``)."""
    text = str(source).split("#", 1)[0]
    return re.split(r"[:/\\]", text)[-1].lower()


def is_benchmark(source: str | Path) -> bool:
    """True when ``source`` (a path or a source id) is benchmark data: on the list, or any opencv-doc video."""
    name = source_name(source)
    if any(fnmatch.fnmatch(name, pat) for pat in BENCHMARK_EXCLUDE):
        return True
    text = str(source)
    return name.endswith(VIDEO_SUFFIXES) and (text.startswith("opencv-doc:") or str(OPENCV_DATA) in text)


def benchmark_sources(sources: Iterable[str | Path]) -> list[str]:
    """The entries of ``sources`` that are benchmark data (empty when the list is clean)."""
    return [str(s) for s in sources if is_benchmark(s)]


def check_not_benchmark(sources: Iterable[str | Path]) -> None:
    """Raise DataError when any source is benchmark data (see ``BENCHMARK_EXCLUDE``)."""
    bad = benchmark_sources(sources)
    if bad:
        raise DataError(
            f"refusing benchmark file(s) {', '.join(bad)} as training data; the exclusion list is "
            f"{', '.join(BENCHMARK_EXCLUDE)} plus every opencv-doc video (streamfuse.data.benchmark)"
        )
