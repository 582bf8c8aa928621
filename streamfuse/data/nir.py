"""Real NIR/RGB training pairs (``shared/data/nir-train``) with whole categories held aside, and synthetic NIR.

Each pair of the folder is an NIR image plus a colour image of the same scene; the colour image is aligned to
the NIR image with the stored 2×3 affine matrix (``cv2.warpAffine(rgb, M, (w, h))``), and the pair is cropped
to the largest axis-aligned rectangle that the warp fully covers, so no black border is ever trained on or
scored. Validation and evaluation use only the held-aside categories (``HELD_OUT``): whole scene types the
engines never saw, as the product is also scored on other real NIR data.

Synthetic NIR made from allowed colour stills (``synthetic_pairs``) augments the 160 real pairs; it uses the
synthetic rig's spectral model (``streamfuse.sources.synthetic_nir``), which is a simulation, not real NIR.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfuse.imageio import read_gray, read_rgb

CATEGORIES = ("field", "forest", "indoor", "mountain", "oldbuilding", "street", "urban", "water")
HELD_OUT = ("mountain", "street")  # one natural and one man-made scene type, never trained on
TRAIN = tuple(c for c in CATEGORIES if c not in HELD_OUT)
ENV_VAR = "STREAMFUSE_NIR_DATA"
SOURCE = (
    "EPFL RGB-NIR Scene dataset (Brown and Suesstrunk, CVPR 2011) via YuChuang1205/VIS-NIR-registration-dataset "
    "af400e46600cbbf49bdf851403001658ba5d9ec6, as /work/shared/data/nir-train (research use; not shipped)"
)


class NirDataError(FileNotFoundError):
    """The NIR training folder is missing or incomplete; the message says where it is looked for."""


@dataclass(frozen=True)
class NirPair:
    """One aligned real pair: ``nir`` H×W uint8 and ``rgb`` H×W×3 uint8 (RGB order), cropped to the valid area."""

    category: str
    name: str
    nir: np.ndarray
    rgb: np.ndarray


def data_dir(folder: str | Path | None = None) -> Path:
    """The nir-train folder: the argument, ``$STREAMFUSE_NIR_DATA``, or the shared checkout's data folder."""
    if folder is not None:
        path = Path(folder)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    else:
        path = Path(__file__).resolve().parents[3] / "shared" / "data" / "nir-train"
        if not path.is_dir():
            path = Path("/work/shared/data/nir-train")
    if not path.is_dir():
        raise NirDataError(f"NIR pairs folder {path} not found; pass --data DIR or set {ENV_VAR}")
    return path


def valid_rect(mask: np.ndarray, step: int = 2) -> tuple[int, int, int, int]:
    """An axis-aligned rectangle (x0, y0, x1, y1) inside which ``mask`` is all true (greedy shrink of the side
    with the most invalid pixels)."""
    ok = mask.astype(bool)
    y0, x0, y1, x1 = 0, 0, ok.shape[0], ok.shape[1]
    while y1 - y0 > 2 * step and x1 - x0 > 2 * step:
        sub = ok[y0:y1, x0:x1]
        bad = [(~sub[:step]).sum(), (~sub[-step:]).sum(), (~sub[:, :step]).sum(), (~sub[:, -step:]).sum()]
        worst = int(np.argmax(bad))
        if bad[worst] == 0:
            break
        if worst == 0:
            y0 += step
        elif worst == 1:
            y1 -= step
        elif worst == 2:
            x0 += step
        else:
            x1 -= step
    return x0, y0, x1, y1


def load_pair(nir_path: Path, multiple: int = 4) -> NirPair:
    """Read one pair, align the colour image to the NIR image, crop to the fully covered area (sides divisible
    by ``multiple`` so an xN reference is exact)."""
    nir = read_gray(nir_path)
    rgb = read_rgb(Path(str(nir_path).replace("_nir.jpg", "_rgb.jpg")))
    m = np.load(str(nir_path).replace("_nir.jpg", "_nir.npy"))
    h, w = nir.shape
    aligned = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpAffine(np.full(rgb.shape[:2], 255, np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    cover = cv2.erode(cover, np.ones((5, 5), np.uint8))  # drop the interpolated edge of the warp too
    x0, y0, x1, y1 = valid_rect(cover > 0)
    x1 -= (x1 - x0) % multiple
    y1 -= (y1 - y0) % multiple
    return NirPair(
        category=nir_path.parent.name,
        name=nir_path.name.split("_")[0],
        nir=np.ascontiguousarray(nir[y0:y1, x0:x1]),
        rgb=np.ascontiguousarray(aligned[y0:y1, x0:x1]),
    )


def pair_paths(categories: tuple[str, ...], folder: str | Path | None = None) -> list[Path]:
    """NIR image paths of the given categories, in a fixed order."""
    root = data_dir(folder)
    paths: list[Path] = []
    for cat in categories:
        if cat not in CATEGORIES:
            raise NirDataError(f"unknown NIR category {cat!r}; choose from {', '.join(CATEGORIES)}")
        found = sorted((root / cat).glob("*_nir.jpg"))
        if not found:
            raise NirDataError(f"no *_nir.jpg pairs in {root / cat}")
        paths += found
    return paths


def load_pairs(split: str = "train", folder: str | Path | None = None, limit: int = 0) -> list[NirPair]:
    """All pairs of a split: ``train`` (6 categories), ``val`` (the held-aside categories) or a category name.
    ``limit`` > 0 keeps that many per category (quick runs, tests)."""
    cats = {"train": TRAIN, "val": HELD_OUT}.get(split, (split,))
    pairs = []
    for cat in cats:
        paths = pair_paths((cat,), folder)
        pairs += [load_pair(p) for p in (paths[:limit] if limit else paths)]
    return pairs


def synthetic_pairs(stills: list[np.ndarray], rng: np.random.Generator, per_still: int = 1) -> Iterator[NirPair]:
    """Synthetic (NIR, RGB) pairs from colour stills through the spectral model, with random model parameters."""
    from streamfuse.sources.synthetic_nir import random_params, simulate_nir

    for i, rgb in enumerate(stills):
        for k in range(per_still):
            nir = simulate_nir(rgb, random_params(rng), rng)
            yield NirPair(category="synthetic", name=f"{i:04d}-{k}", nir=nir, rgb=rgb)
