"""``guided-temporal``: the classical ``guided`` engine with the mono frames between references (stream path).

A live rig sees every mono frame between two colour frames; ``guided`` (frame-wise) ignores them. This engine
keeps, per stream, the flow from the previous mono frame to the reference and, for each new mono frame:

1. direct: guided's blur-matched DIS flow from the frame to the reference (large motion, cross-resolution);
2. chained: DIS flow from this frame to the previous one (same sensor, full detail, small motion), composed
   with the previous frame's flow to the reference;
3. per pixel, the flow whose reference-luma warp error (against the blur-matched mono, box-smoothed) is lower
   wins, with a small bias toward the direct flow; the chosen flow is the chain's next link.

The warped reference then goes through guided's occlusion fill and detail term unchanged. Frame-wise calls
(``colorize(mono, state)``, the CCDC protocol, ``streamfuse colorize``) are exactly ``guided``'s.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from streamfuse.engines.base import EngineError, EngineStream, ReferenceState
from streamfuse.engines.guided import PRESETS, Alignment, GuidedEngine, box, warp_reference


def compose_flow(step: np.ndarray, chain: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Flow from frame t to the reference through t-1: ``step`` (t -> t-1) followed by ``chain`` (t-1 -> ref)."""
    linked = cv2.remap(chain, gx + step[..., 0], gy + step[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return step + linked


def warp_error(warped_y: np.ndarray, guide: np.ndarray, radius: int) -> np.ndarray:
    """Box-smoothed absolute luma warp error (0..255): low where a flow explains the mono frame."""
    return box(cv2.absdiff(warped_y, guide), radius)


class GuidedTemporalEngine(GuidedEngine):
    """``guided`` plus, on the stream path, flow chained through the mono frames since the reference.

    Args:
        chain: use the chained candidate on the stream path (False = exactly ``guided``).
        error_radius: box radius (working pixels) of the warp-error maps that pick the flow per pixel.
        bias: luma levels the chained flow must win by before it replaces the direct one.
        step_preset: DIS preset of the mono -> mono flow.
        **guided: every ``guided`` option.
    """

    name = "guided-temporal"

    def __init__(
        self,
        chain: bool = True,
        error_radius: int = 3,
        bias: float = 0.0,
        step_preset: str = "ultrafast",
        **guided: Any,
    ) -> None:
        super().__init__(**guided)
        if step_preset not in PRESETS:
            raise EngineError(
                f"guided-temporal: unknown step_preset {step_preset!r}; choose one of {', '.join(PRESETS)}"
            )
        if error_radius < 0 or bias < 0:
            raise EngineError("guided-temporal: need error_radius >= 0 and bias >= 0")
        self.chain = bool(chain)
        self.error_radius = int(error_radius)
        self.bias = float(bias)
        self.step_preset = step_preset
        self._step_dis: dict[tuple[int, int], cv2.DISOpticalFlow] = {}

    def step_flow(self, mono_w: np.ndarray, prev_w: np.ndarray) -> np.ndarray:
        """DIS flow from this mono frame to the previous one at the working size (same sensor, full detail)."""
        size = (mono_w.shape[1], mono_w.shape[0])
        dis = self._step_dis.get(size)
        if dis is None:
            dis = cv2.DISOpticalFlow_create(PRESETS[self.step_preset])
            self._step_dis = {size: dis}  # one stream, one size at a time
        return dis.calc(mono_w, prev_w, None)

    def temporal_align(
        self, mono: np.ndarray, state: ReferenceState, memory: dict, always_step: bool = False
    ) -> Alignment:
        """guided's alignment, then the chained candidate and the per-pixel pick; updates ``memory``.

        ``memory`` holds the previous frame's working-size mono (``prev``) and its flow to the current
        reference (``chain``, absent right after a new reference). Adds ``direct`` (guided's flow), ``step``
        (this frame -> previous frame, or None; computed whenever there is a previous frame if ``always_step``),
        ``chained`` (or None), ``use_chain`` (0/1 map) and the errors ``err_direct`` / ``err_chain``.
        """
        st = self.align(mono, state)
        flow, ref, guide = st.flow, st.ref, st.guide
        st.direct, st.chained, st.use_chain, st.step = flow, None, None, None
        st.err_direct = err_d = warp_error(st.warped[..., 0], guide, self.error_radius)
        st.err_chain = err_d
        prev = memory.get("prev")
        chain_ok = self.chain and "chain" in memory
        if prev is not None and prev.shape == st.mono_w.shape and (chain_ok or always_step):
            st.step = self.step_flow(st.mono_w, prev)
        if chain_ok and st.step is not None and memory["chain"].shape == flow.shape:
            step = st.step
            chained = compose_flow(step, memory["chain"], ref["gx"], ref["gy"])
            warped_c = warp_reference(ref, chained)
            err_c = warp_error(warped_c[..., 0], guide, self.error_radius)
            use = (err_c + self.bias < err_d).astype(np.float32)
            st.chained, st.warped_chain, st.err_chain = chained, warped_c, err_c
            st.use_chain = use
            flow = flow + use[..., None] * (chained - flow)
            st.warped = st.warped + use[..., None] * (warped_c - st.warped)
            st.flow = flow
        memory["prev"], memory["chain"] = st.mono_w, flow
        return st

    def open_stream(self) -> EngineStream:
        return GuidedTemporalStream(self)

    def colorize_stage(self, mono: np.ndarray, st: dict) -> np.ndarray:
        """guided's refinement (occlusion fill, gated detail) and RGB merge on an aligned stage."""
        chroma = self.fill_occlusions(st.guide, st.warped)
        weight = self._detail_weight(st.ref["noise"])
        if weight > 0:
            chroma = self._add_detail(st.mono_w, chroma, weight)
        return self._to_rgb(mono, chroma)


class GuidedTemporalStream(EngineStream):
    """One camera pair through ``guided-temporal``: the flow chain restarts at every reference."""

    engine: GuidedTemporalEngine

    def __init__(self, engine: GuidedTemporalEngine) -> None:
        super().__init__(engine)
        self.memory: dict = {}

    def _on_reference(self, state: ReferenceState) -> None:
        self.memory = {}

    def reset(self) -> None:
        super().reset()
        self.memory = {}

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        st = self.engine.temporal_align(mono, state, self.memory)
        return self.engine.colorize_stage(mono, st)
