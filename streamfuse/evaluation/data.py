"""Where the public benchmark lives (Debian ``opencv-doc``) and a clear error when it is missing."""

from __future__ import annotations

from pathlib import Path

from streamfuse.data.benchmark import OPENCV_DATA
from streamfuse.errors import SourceError

DEFAULT_DATA = OPENCV_DATA  # the benchmark's home, named once in streamfuse.data.benchmark

VIDEOS: tuple[str, ...] = ("vtest.avi", "Megamind.avi", "tree.avi")
# Stereo/flow pairs of the dual-lens protocol: dataset name -> (mono/left image, colour/right image).
STEREO_PAIRS: dict[str, tuple[str, str]] = {
    "aloe": ("aloeL.jpg", "aloeR.jpg"),
    "rubberwhale": ("rubberwhale1.png", "rubberwhale2.png"),
}


def data_dir(path: str | Path | None = None) -> Path:
    """The benchmark folder: ``path`` if given, else the opencv-doc folder; raises a one-line SourceError if absent."""
    folder = Path(path) if path is not None else DEFAULT_DATA
    if not folder.is_dir():
        hint = (
            "install it with `sudo apt-get install opencv-doc`"
            if path is None
            else "pass --data with the folder that holds vtest.avi, Megamind.avi, tree.avi, aloeL.jpg ..."
        )
        raise SourceError(f"benchmark data folder {folder} not found; {hint}")
    return folder


def require(folder: Path, name: str) -> Path:
    """Path of one benchmark file, or a SourceError naming it and the package that provides it."""
    path = folder / name
    if not path.is_file():
        raise SourceError(
            f"benchmark file {path} not found; install `opencv-doc` (apt-get install opencv-doc) or pass --data"
        )
    return path
