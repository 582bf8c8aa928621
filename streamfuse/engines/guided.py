"""The classical ``guided`` engine: DIS flow alignment, chroma backward warp, luma-guided refinement.

No weights. It is the fast fallback and the baseline every learned engine must beat.
Alignment runs at a working resolution of at most ``work_factor`` × the reference resolution, because the
reference carries no finer colour detail; the mono luma then steers an edge-aware (guided-filter)
upsampling of the aligned chroma to full resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma
from streamfuse.engines.base import Engine, EngineError, ReferenceState

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def box(x: np.ndarray, radius: int) -> np.ndarray:
    """Normalized box filter with a (2r+1)² window, replicated borders."""
    return cv2.blur(x, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE)


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple:
    """Guided-filter affine coefficients (a, b) such that src ≈ a·guide + b locally (He et al.)."""
    mean_i = box(guide, radius)
    var_i = box(guide * guide, radius) - mean_i * mean_i
    if src.ndim == 3:
        guide3 = guide[..., None]
        mean_p = box(src, radius)
        cov = box(src * guide3, radius) - mean_i[..., None] * mean_p
        a = cov / (var_i[..., None] + eps)
        b = mean_p - a * mean_i[..., None]
    else:
        mean_p = box(src, radius)
        cov = box(src * guide, radius) - mean_i * mean_p
        a = cov / (var_i + eps)
        b = mean_p - a * mean_i
    return box(a, radius), box(b, radius)


class GuidedEngine(Engine):
    """DIS flow from mono luma to reference luma, backward warp of chroma, guided-filter refinement.

    Args:
        preset: DIS preset, one of ultrafast, fast, medium.
        work_factor: alignment runs at up to this multiple of the reference resolution (or the mono one).
        radius: guided-filter radius in working-resolution pixels.
        eps: guided-filter regularization on a 0..1 luma scale; larger keeps less luma detail in chroma.
        detail: weight of the luma-steered detail term (0 = plain warped chroma, 1 = full guided filter).
        seed_flow: start DIS from the previous frame's flow while the reference is unchanged.
    """

    name = "guided"

    def __init__(
        self,
        preset: str = "fast",
        work_factor: float = 2.0,
        radius: int = 2,
        eps: float = 1e-3,
        detail: float = 1.0,
        seed_flow: bool = True,
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise EngineError(f"guided: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if work_factor < 1:
            raise EngineError(f"guided: work_factor must be >= 1, got {work_factor}")
        if radius < 1 or eps <= 0 or not 0 <= detail <= 1:
            raise EngineError("guided: need radius >= 1, eps > 0 and 0 <= detail <= 1")
        self.preset = preset
        self.work_factor = float(work_factor)
        self.radius = int(radius)
        self.eps = float(eps)
        self.detail = float(detail)
        self.seed_flow = bool(seed_flow)
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def _work_size(self, mono_shape: tuple[int, int], ref_shape: tuple[int, int]) -> tuple[int, int]:
        scale = min(mono_shape[0] / ref_shape[0], self.work_factor)
        w = min(mono_shape[1], max(8, round(ref_shape[1] * scale)))
        h = min(mono_shape[0], max(8, round(ref_shape[0] * scale)))
        return w, h

    def _reference_at(self, state: ReferenceState, size: tuple[int, int]) -> dict:
        """Reference luma, chroma and sampling grid at the working size: computed once per reference."""
        cached = state.cache.get(size)
        if cached is None:
            ycc = cv2.resize(state.ycbcr, size, interpolation=cv2.INTER_CUBIC)
            gx, gy = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
            cached = {"y": np.ascontiguousarray(ycc[..., 0]), "cbcr": ycc[..., 1:].copy(), "gx": gx, "gy": gy}
            state.cache[size] = cached
        return cached

    def _flow(self, mono_w: np.ndarray, ref: dict, state: ReferenceState) -> np.ndarray:
        prev = state.features.get("flow") if self.seed_flow else None
        # DIS starts from the flow it is handed when that array is non-empty.
        seed = prev.copy() if prev is not None and prev.shape[:2] == mono_w.shape else None
        flow = self._dis.calc(mono_w, ref["y"], seed)
        state.features["flow"] = flow
        return flow

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        full = (mono.shape[1], mono.shape[0])
        size = self._work_size(mono.shape, state.shape)
        ref = self._reference_at(state, size)
        mono_w = mono if size == full else cv2.resize(mono, size, interpolation=cv2.INTER_AREA)
        flow = self._flow(mono_w, ref, state)
        warped = cv2.remap(
            ref["cbcr"], ref["gx"] + flow[..., 0], ref["gy"] + flow[..., 1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        ).astype(np.float32)
        guide = mono_w.astype(np.float32) * (1.0 / 255.0)
        a, b = guided_coefficients(guide, warped, self.radius, self.eps)
        if self.detail < 1.0:
            # Blend toward the plain warp: a' = detail·a, b' keeps the local mean.
            mean_i = box(guide, self.radius)[..., None]
            b = b + (1.0 - self.detail) * a * mean_i
            a = a * self.detail
        if size != full:
            a = cv2.resize(a, full, interpolation=cv2.INTER_LINEAR)
            b = cv2.resize(b, full, interpolation=cv2.INTER_LINEAR)
        y = mono.astype(np.float32) * (1.0 / 255.0)
        chroma = a * y[..., None] + b
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])
