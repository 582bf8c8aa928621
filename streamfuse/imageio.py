"""Reading and writing still images in RGB order, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamfuse.errors import ImageReadError


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (8-bit; 16-bit files are scaled down)."""
    img = _read(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_gray(path: str | Path) -> np.ndarray:
    """Read an image file as a mono uint8 plane; colour files are converted to BT.601 luma."""
    img = _read(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    return img


def _read(path: str | Path, flags: int) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image file not found: {p}")
    img = cv2.imread(str(p), flags)
    if img is None:
        raise ImageReadError(f"cannot decode image {p}: not an image format OpenCV reads, or the file is corrupt")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    return img


def write_rgb(path: str | Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image; the folder is created if needed."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ImageReadError(f"cannot write image {p}: unknown extension or unwritable folder")
