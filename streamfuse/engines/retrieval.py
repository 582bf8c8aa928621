"""Reference retrieval for Pik-Fix: pick the most similar colour reference per shot from a folder of pictures.

Following the paper (§3.5), similarity compares deep features of the grey input and each reference by their
texture (per-channel means and deviations) and structure (per-channel spatial covariance), as in DISTS; the
features are those of Pik-Fix's similarity net (``features.onnx`` of the ``pikfix-paper`` model), computed on
histogram-equalized luma so fading and flicker do not decide. A scene-cut detector (mean |ΔY|) tells when a
film enters a new shot, and ``RetrievingStream`` then retrieves again and pushes the new reference.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import luma
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, EngineStream

SIZE = (192, 144)  # every picture is described at this size (multiples of 16: the encoder's 1/16 level)
CUT = 45.0  # mean |ΔY| (0..255) between consecutive equalized 1/4-size frames that marks a scene cut
_C = 1e-4
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _prep(y: np.ndarray) -> np.ndarray:
    """Luma at the description size, median-filtered (dust, scratches) and equalized (fading, flicker)."""
    small = cv2.resize(y, SIZE, interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(cv2.medianBlur(small, 3))


class ReferenceRetriever:
    """Describes pictures with the similarity net's features and ranks references for a grey frame.

    Args:
        model: Pik-Fix model whose ``features`` graph to use (default ``pikfix-paper``).
        threads: ONNX Runtime threads.
    """

    def __init__(self, model: str = "pikfix-paper", threads: int | None = 1) -> None:
        manifest, folder = load_engine_manifest(model, "pikfix")
        if "features" not in manifest.graphs:
            raise EngineError(f"retrieval: model {model!r} has no similarity-net features graph; use pikfix-paper")
        from streamfuse.runtime.factory import create_executor

        self.executor = create_executor(folder / manifest.graphs["features"], "onnxruntime", threads=threads)

    def describe(self, grey: np.ndarray) -> list[np.ndarray]:
        """Feature maps (C, h, w) of a grey picture at the description size."""
        x = (_prep(grey).astype(np.float32) * (1.0 / 255.0))[None, None]
        outs = self.executor.run({"y": np.ascontiguousarray(x)})
        return [v[0].astype(np.float64) for v in outs.values()]

    def describe_reference(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Features of a colour reference (its luma)."""
        return self.describe(luma(rgb))

    @staticmethod
    def similarity(a: list[np.ndarray], b: list[np.ndarray]) -> float:
        """DISTS-style similarity in [-1, 1]: texture (means, deviations) and structure (covariance), per level."""
        total = 0.0
        for fa, fb in zip(a, b, strict=True):
            ma, mb = fa.mean(axis=(1, 2)), fb.mean(axis=(1, 2))
            va, vb = fa.var(axis=(1, 2)), fb.var(axis=(1, 2))
            cov = ((fa - ma[:, None, None]) * (fb - mb[:, None, None])).mean(axis=(1, 2))
            texture = (2 * ma * mb + _C) / (ma * ma + mb * mb + _C)
            structure = (2 * cov + _C) / (va + vb + _C)
            total += 0.5 * float(texture.mean()) + 0.5 * float(structure.mean())
        return total / len(a)

    def best(self, grey: np.ndarray, references: list[list[np.ndarray]]) -> tuple[int, list[float]]:
        """Index of the most similar described reference for a grey frame, and every score."""
        if not references:
            raise EngineError("retrieval: no references to choose from")
        q = self.describe(grey)
        scores = [self.similarity(q, r) for r in references]
        return int(np.argmax(scores)), scores


def load_reference_folder(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """(file name, RGB uint8) of every image in a folder, sorted by name."""
    from streamfuse.imageio import read_rgb

    root = Path(folder)
    if not root.is_dir():
        raise EngineError(f"reference folder {root} not found")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EngineError(f"reference folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return [(p.name, read_rgb(p)) for p in files]


class ShotDetector:
    """Scene cuts in a frame sequence: mean |ΔY| between consecutive frames above ``threshold``, on 1/4-size,
    median-filtered, histogram-equalized luma, so that fading and flicker neither hide nor fake a cut (on the
    allow-listed training videos, frames within a shot stay below 37, their cuts measure 62 and more)."""

    def __init__(self, threshold: float = CUT) -> None:
        self.threshold = float(threshold)
        self._prev: np.ndarray | None = None

    def is_cut(self, grey: np.ndarray) -> bool:
        """True for the first frame and for every frame that starts a new shot."""
        size = (max(8, grey.shape[1] // 4), max(8, grey.shape[0] // 4))
        small = cv2.equalizeHist(cv2.medianBlur(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), 3))
        small = small.astype(np.int16)
        prev, self._prev = self._prev, small
        return prev is None or prev.shape != small.shape or float(np.mean(np.abs(small - prev))) > self.threshold


class RetrievingStream(EngineStream):
    """A film stream that picks its reference from a library at every shot: detect the cut, retrieve the most
    similar reference for the shot's first frame, push it into the engine's own stream, colorize.

    References pushed from outside (a rig's colour camera) are ignored: the library decides.
    """

    def __init__(
        self, engine: Engine, references: list[tuple[str, np.ndarray]], retriever: ReferenceRetriever | None = None
    ) -> None:
        super().__init__(engine)
        if not references:
            raise EngineError("retrieval: the reference library is empty")
        self.library = references
        self.retriever = retriever or ReferenceRetriever()
        self.descriptors = [self.retriever.describe_reference(rgb) for _, rgb in references]
        self.inner: EngineStream = engine.open_stream()
        self.detector = ShotDetector()
        self.chosen: list[tuple[int, str]] = []  # (frame index, reference name) per shot

    @property
    def has_reference(self) -> bool:
        return True

    def push_state(self, state):  # noqa: ANN001, ANN201 - the library decides; outside references are ignored
        self.references += 1
        return state

    def reset(self) -> None:
        super().reset()
        self.inner.reset()
        self.detector = ShotDetector()

    def colorize(self, mono: np.ndarray) -> np.ndarray:
        """The next grey frame -> RGB, with the reference re-picked at each scene cut."""
        if self.detector.is_cut(mono):
            idx, _ = self.retriever.best(mono, self.descriptors)
            self.inner.reset()
            self.inner.push_reference(self.library[idx][1])
            self.chosen.append((self.frames, self.library[idx][0]))
        self.frames += 1
        return self.inner.colorize(mono)


def retrieve(grey: np.ndarray, folder: str | Path, model: str = "pikfix-paper") -> tuple[str, np.ndarray]:
    """The (name, RGB) of the reference in ``folder`` most similar to one grey picture."""
    refs = load_reference_folder(folder)
    retriever = ReferenceRetriever(model)
    idx, _ = retriever.best(grey, [retriever.describe_reference(rgb) for _, rgb in refs])
    return refs[idx]
