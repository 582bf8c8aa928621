"""The learned ``pikfix`` (fast, default) and ``pikfix-paper`` engines: restore and colorize old film and photos.

Input: a degraded grey frame (scratches, dust, grain, blur, fading, flicker) and a colour reference picture of a
similar scene. Output: the restored, colorized H×W×3 uint8 RGB frame at the input size.

1. Tone prior: the degraded luma is histogram-matched to the reference's luma (one LUT per frame; this is what
   undoes fading and flicker), and the restoration net sees [degraded, tone-matched] and outputs restored luma.
2. Chroma: ``guided``'s public alignment stage (blur-matched DIS flow and occlusion fill) brings the reference
   chroma onto the *restored* luma. ``pikfix-paper`` then runs the paper's similarity net + SPHist-guided
   colorization net on it; ``pikfix`` keeps the aligned chroma.
3. Film: ``open_stream()`` keeps the previous frame's chroma and restored luma, and blends chroma over time where
   the restored luma did not change (motion-gated), so scratches, dust and flicker do not make colours jump.

ONNX Runtime runs the networks; this module never imports torch.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from streamfuse.color import luma, merge_luma_chroma, rgb_to_ycbcr
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, EngineStream, ReferenceState, check_mono
from streamfuse.engines.guided import GuidedEngine

# The classical alignment stage, pinned so a trained model keeps the inputs it was trained on.
CLASSICAL: dict[str, Any] = {
    "preset": "ultrafast",
    "work_factor": 8.0,
    "work_scale": 0.5,
    "finest_scale": 1,
    "refine_iters": 1,
    "smoothness": 10.0,
    "confidence": 30.0,
    "fill_radius": 8,
    "denoise": "off",
    "detail": 0.0,
    "seed_flow": False,
}
PAD = 16  # the graphs need H and W in multiples of this
CHROMA_MIN = 128  # frames are aligned below full size only while the working size keeps this many pixels a side
TEMPORAL = 0.9  # pikfix stream: weight of the previous chroma where the restored luma is unchanged
MOTION = 60.0  # restored-luma change (0..255) over which the temporal weight falls off (chosen on training clips)


def classical_engine() -> GuidedEngine:
    """The alignment stage (training builds the same, so train and inference inputs match)."""
    return GuidedEngine(**CLASSICAL)


# --- torch-free helpers shared with training -------------------------------------------------------------------


def luma_cdf(y: np.ndarray) -> np.ndarray:
    """Cumulative histogram (256,) of a uint8 luma plane, 0..1."""
    hist = np.bincount(y[::2, ::2].ravel(), minlength=256).astype(np.float64)
    return np.cumsum(hist) / max(1.0, hist.sum())


def tone_match(grey: np.ndarray, ref_cdf: np.ndarray) -> np.ndarray:
    """Histogram-specify a uint8 grey plane to a reference luma CDF (float32 0..255): the fading/flicker prior."""
    cdf = luma_cdf(grey)
    lut = np.interp(cdf, ref_cdf, np.arange(256, dtype=np.float64)).astype(np.float32)
    return lut[grey]


def restoration_input(grey: np.ndarray, ref_cdf: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 network input: degraded luma and its tone-matched version, both 0..1."""
    return np.stack([grey.astype(np.float32) * (1.0 / 255.0), tone_match(grey, ref_cdf) * (1.0 / 255.0)])


def aligned_chroma(classic: GuidedEngine, y: np.ndarray, state: ReferenceState) -> tuple[np.ndarray, tuple]:
    """Reference chroma aligned on luma ``y`` at the working size: (3, h, w) float32 [Cb, Cr, |warp error|] in
    network units ((c - 128)/255 and /255), plus the working size."""
    st = classic.align(y, state)
    fill = classic.fill_occlusions(st.guide, st.warped)
    err = np.abs(st.warped[..., 0] - st.guide) * (1.0 / 255.0)
    planes = [(fill[..., 0] - 128.0) * (1.0 / 255.0), (fill[..., 1] - 128.0) * (1.0 / 255.0), err]
    return np.stack(planes).astype(np.float32), st.size


def pad_chw(x: np.ndarray, multiple: int = PAD) -> np.ndarray:
    """Replicate-pad the last two axes up to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="edge")


def reference_planes(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The reference at a working size (w, h): luma (1, h, w) 0..1 and chroma (2, h, w) in network units."""
    if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ycc = rgb_to_ycbcr(rgb.astype(np.float32))
    y = ycc[..., 0][None] * (1.0 / 255.0)
    c = (ycc[..., 1:].transpose(2, 0, 1) - 128.0) * (1.0 / 255.0)
    return y.astype(np.float32), c.astype(np.float32)


# --- engines -----------------------------------------------------------------------------------------------------


class PikFixEngine(Engine):
    """Fast Pik-Fix: tone prior + restoration net at 1/4 resolution, chroma from the reference aligned on the
    restored luma; temporally smoothed chroma in ``open_stream()``.

    Args:
        model: shipped model name (folder under engines/) or a folder with manifest.json.
        backend: onnxruntime (default) or tensorrt.
        threads: ONNX Runtime intra-op threads.
        temporal: stream only: weight of the previous frame's chroma where the scene did not move (0 = off).
        motion: stream only: restored-luma change (0..255) over which the temporal weight falls off.
        references: a folder of colour references; streams then retrieve the most similar one at every shot
            (scene cut) with the similarity net's features, instead of using pushed references.
        chroma_scale: the reference is aligned at this fraction of the frame size (default: 0.5 for ``pikfix``,
            1 for ``pikfix-paper``, whose colorization net was trained at full size).
    """

    name = "pikfix"
    arch = "fast"
    default_chroma_scale = 0.5

    def __init__(
        self,
        model: str | None = None,
        backend: str = "onnxruntime",
        threads: int | None = None,
        temporal: float = TEMPORAL,
        motion: float = MOTION,
        references: str | None = None,
        chroma_scale: float | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= temporal < 1:
            raise EngineError(f"{self.name}: temporal must be in [0, 1), got {temporal}")
        self.manifest, folder = load_engine_manifest(model or self.name, "pikfix")
        if self.manifest.arch.get("arch") != self.arch:
            raise EngineError(f"{self.name}: model {model!r} is a {self.manifest.arch.get('arch')!r} Pik-Fix model")
        from streamfuse.runtime.factory import create_executor

        opts: dict[str, Any] = {"threads": threads} if backend == "onnxruntime" else {}
        self.manifest_name, self.backend, self.threads = model or self.name, backend, threads
        self.executors = {
            role: create_executor(folder / file, backend, **opts) for role, file in self.manifest.graphs.items()
        }
        if motion <= 0:
            raise EngineError(f"{self.name}: motion must be > 0, got {motion}")
        self.temporal, self.motion = float(temporal), float(motion)
        self.classic = classical_engine()
        self.references = references
        self._library: list | None = None
        self.chroma_scale = float(self.default_chroma_scale if chroma_scale is None else chroma_scale)
        if not 0 < self.chroma_scale <= 1:
            raise EngineError(f"{self.name}: chroma_scale must be in (0, 1], got {chroma_scale}")

    # reference work
    def _prepare(self, state: ReferenceState) -> None:
        self.classic._prepare(state)
        state.features["luma_cdf"] = luma_cdf(luma(state.rgb))

    def colorize(self, mono: np.ndarray, ref: ReferenceState | np.ndarray) -> np.ndarray:
        """As ``Engine.colorize``; a reference larger than the frame is first fitted to it (once per size)."""
        mono = check_mono(mono)
        state = ref if isinstance(ref, ReferenceState) else self.prepare_reference(ref)
        return self._colorize(mono, self.fit_reference(state, mono.shape))

    def fit_reference(self, state: ReferenceState, shape: tuple[int, int]) -> ReferenceState:
        """The reference, area-resized to fit inside a frame of ``shape`` when it is larger (cached on it)."""
        h, w = shape
        if state.shape[0] <= h and state.shape[1] <= w:
            return state
        key = ("fit", h, w)
        if key not in state.cache:
            f = min(h / state.shape[0], w / state.shape[1])
            size = (max(2, int(state.shape[1] * f)), max(2, int(state.shape[0] * f)))
            state.cache[key] = self.prepare_reference(cv2.resize(state.rgb, size, interpolation=cv2.INTER_AREA))
        return state.cache[key]

    # per frame
    def restore(self, grey: np.ndarray, state: ReferenceState) -> np.ndarray:
        """Restored luma (H×W uint8) of a degraded grey frame, with the reference's tone prior."""
        h, w = grey.shape
        x = pad_chw(restoration_input(grey, state.features["luma_cdf"]))[None]
        y = self.executors["restore"].run({"degraded": np.ascontiguousarray(x)})["restored"][0, 0, :h, :w]
        return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)

    def chroma(self, y: np.ndarray, state: ReferenceState) -> np.ndarray:
        """Chroma (h×w×2 float32, 0..255 units) at the alignment's working size, for restored luma ``y``.

        Colour carries less detail than luma, so frames larger than ``CHROMA_MIN`` are aligned at
        ``chroma_scale`` of their size (the reference fitted to it once); ``merge`` upsamples the result."""
        y, state = self.chroma_input(y, state)
        aligned, _ = aligned_chroma(self.classic, y, state)
        return aligned[:2].transpose(1, 2, 0) * 255.0 + 128.0

    def chroma_input(self, y: np.ndarray, state: ReferenceState) -> tuple[np.ndarray, ReferenceState]:
        """Restored luma and reference at the chroma stage's size (``chroma_scale`` of the frame)."""
        if self.chroma_scale < 1 and min(y.shape) * self.chroma_scale >= CHROMA_MIN:
            size = (round(y.shape[1] * self.chroma_scale), round(y.shape[0] * self.chroma_scale))
            y = cv2.resize(y, size, interpolation=cv2.INTER_AREA)
            state = self.fit_reference(state, y.shape)
        return y, state

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        y = self.restore(mono, state)
        return self.merge(y, self.chroma(y, state))

    @staticmethod
    def merge(y: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """Restored luma + working-size chroma -> RGB at the luma's size."""
        h, w = y.shape
        if chroma.shape[:2] != (h, w):
            chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
        return merge_luma_chroma(y, chroma[..., 0], chroma[..., 1])

    def open_stream(self) -> EngineStream:
        """Film: temporally smoothed chroma; with ``references``, a per-shot retrieval from that folder."""
        if self.references is None:
            return PikFixStream(self)
        from streamfuse.engines.retrieval import ReferenceRetriever, RetrievingStream, load_reference_folder

        if self._library is None:
            self._library = load_reference_folder(self.references)
        engine = type(self)(
            self.manifest_name, self.backend, self.threads, self.temporal, self.motion, chroma_scale=self.chroma_scale
        )
        return RetrievingStream(engine, self._library, ReferenceRetriever(threads=self.threads))


class PikFixPaperEngine(PikFixEngine):
    """Paper-faithful Pik-Fix: multi-level RDN restoration, then the similarity net and the SPHist-guided
    colorization net, fed with the reference chroma aligned on the restored luma."""

    name = "pikfix-paper"
    arch = "paper"
    default_chroma_scale = 1.0

    def chroma(self, y: np.ndarray, state: ReferenceState) -> np.ndarray:
        y, state = self.chroma_input(y, state)
        aligned, size = aligned_chroma(self.classic, y, state)
        yw = y if (y.shape[1], y.shape[0]) == size else cv2.resize(y, size, interpolation=cv2.INTER_AREA)
        key = ("paper-ref", size)
        if key not in state.cache:
            ref_y, ref_c = reference_planes(state.rgb, size)
            state.cache[key] = (pad_chw(ref_y)[None], pad_chw(ref_c)[None])
        ref_y, ref_c = state.cache[key]
        inputs = {
            "y": np.ascontiguousarray(pad_chw(yw.astype(np.float32)[None] * (1.0 / 255.0))[None]),
            "aligned": np.ascontiguousarray(pad_chw(aligned)[None]),
            "ref_y": ref_y,
            "ref_c": ref_c,
        }
        out = self.executors["colorize"].run(inputs)["chroma"][0, :, : size[1], : size[0]]
        return out.transpose(1, 2, 0) * 255.0 + 128.0


class PikFixStream(EngineStream):
    """Film through Pik-Fix: per frame restoration, then a recursive filter on chroma: the previous frame's chroma
    is blended in with weight ``temporal`` where the restored luma did not change (falling off over a change of
    ``motion``), so flicker, dust and weave do not make colours jump while moving objects take their new colour.
    (A motion-compensated variant, warping the previous chroma along DIS flow, scored worse on training clips.)"""

    engine: PikFixEngine

    def __init__(self, engine: PikFixEngine) -> None:
        super().__init__(engine)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # (working-size luma uint8, chroma float32)

    def _on_reference(self, state: ReferenceState) -> None:
        self._prev = None  # a new reference (a new shot): no carry-over

    def reset(self) -> None:
        super().reset()
        self._prev = None

    def _propagate(self, yw: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        eng = self.engine
        if eng.temporal <= 0 or self._prev is None or self._prev[0].shape != yw.shape:
            return chroma
        py, pc = self._prev
        change = cv2.GaussianBlur(cv2.absdiff(yw, py).astype(np.float32), (0, 0), 2.0)
        wgt = (eng.temporal * np.exp(-((change / eng.motion) ** 2)))[..., None]
        return wgt * pc + (1.0 - wgt) * chroma

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        eng = self.engine
        state = eng.fit_reference(state, mono.shape)
        y = eng.restore(mono, state)
        chroma = eng.chroma(y, state)
        h, w = chroma.shape[:2]
        yw = y if y.shape == (h, w) else cv2.resize(y, (w, h), interpolation=cv2.INTER_AREA)
        chroma = self._propagate(yw, chroma).astype(np.float32)
        self._prev = (yw, chroma)
        return eng.merge(y, chroma)
