"""The learned ``ccdc`` (fast, default) and ``ccdc-paper`` engines, run through ONNX Runtime by default.

``ccdc``: DIS flow aligns the reference at the working resolution (2× reference), the network (run at
reference resolution) blends three aligned candidates using their warp errors and adds a chroma residual,
which repairs misalignment and fills occlusions; the chroma is then upsampled to the mono size with an
optional (gated) luma-guided detail term. ``ccdc-paper``: the paper's full-resolution network; its reference
branch (colour and luminance encoder pyramids) runs once per colour frame in ``prepare_reference``.

This module never imports torch unless ``backend="torch"`` is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma
from streamfuse.engines.assets import EngineManifest, load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, EngineStream, ReferenceState
from streamfuse.engines.common import crop_chroma, pad_to, upsample_chroma
from streamfuse.engines.guided import Alignment, GuidedEngine, warp_reference
from streamfuse.engines.guided_temporal import GuidedTemporalEngine, compose_flow

# Kept in step with streamfuse.models.ccdc_arch.CANDIDATES (that module imports torch).
CANDIDATES = ("dis", "fill", "smooth", "zero")

FAST_MULTIPLE = 32  # CCDCFast: stride-2 stem + 3 downsamples + margin
PAPER_MULTIPLE = 64  # FlowNetS: six stride-2 levels


# --- shared feature construction (also used by training, so train and inference see the same inputs) ------


def classical_stage(classic: GuidedEngine, mono: np.ndarray, state: ReferenceState) -> Alignment:
    """The ``guided`` engine's alignment at its working size (blur-matched DIS flow, warp) plus its occlusion fill:
    the working-size planes the network needs (all float32 on a 0..255 scale)."""
    st = classic.align(mono, state)
    st.fill = classic.fill_occlusions(st.guide, st.warped)
    return st


def _norm(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> list[np.ndarray]:
    return [y * (1.0 / 255.0), (cb - 128.0) * (1.0 / 255.0), (cr - 128.0) * (1.0 / 255.0)]


def fast_features(st: Alignment) -> np.ndarray:
    """Network input (C, h, w) float32: mono; per candidate (DIS warp, guided's occlusion fill, smoothed-flow
    warp, no warp) its Y, Cb, Cr and luma warp error against the blur-matched guide (the visibility cue);
    the guide; the DIS flow (scaled by 1/32)."""
    ref, flow, warped, fill = st.ref, st.flow, st.warped, st.fill
    w = flow.shape[1]
    radius = max(2, w // 24)
    smooth = cv2.blur(flow, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE)
    smooth_w = warp_reference(ref, smooth)
    g = st.guide * (1.0 / 255.0)
    cands = {
        "dis": (warped[..., 0], warped[..., 1], warped[..., 2]),
        "fill": (warped[..., 0], fill[..., 0], fill[..., 1]),
        "smooth": (smooth_w[..., 0], smooth_w[..., 1], smooth_w[..., 2]),
        "zero": (ref["ycc"][..., 0], ref["ycc"][..., 1], ref["ycc"][..., 2]),
    }
    chans = [st.mono_w.astype(np.float32) * (1.0 / 255.0)]
    for name in CANDIDATES:
        y, cb, cr = _norm(*cands[name])
        chans += [y, cb, cr, y - g]
    chans += [g, flow[..., 0] * (1.0 / 32.0), flow[..., 1] * (1.0 / 32.0)]
    return np.stack(chans, 0).astype(np.float32)


# --- temporal features (the stream path of the temporal model; frame-wise = no history) ----------------------

# Kept in step with streamfuse.models.ccdc_arch.TEMPORAL_* (that module imports torch).
TEMPORAL_CANDIDATES = ("direct", "fill", "chained", "propagated", "memory")
TEMPORAL_IN_CHANNELS = 21


def new_memory() -> dict[str, Any]:
    """An empty stream memory: no previous frame, no flow chain, no earlier reference."""
    return {}


def temporal_features(
    classic: GuidedTemporalEngine, mono: np.ndarray, state: ReferenceState, memory: dict[str, Any]
) -> tuple[np.ndarray, Alignment]:
    """The temporal model's input (TEMPORAL_IN_CHANNELS, h, w) at the working size, and the stage dict.

    Candidates a rig has, each with its warp error (the paper's visibility cue, luma against the blur-matched
    mono): ``direct`` (guided's DIS warp of the newest reference), ``fill`` (guided-temporal's chroma: the
    per-pixel pick of direct / chained warp plus guided's occlusion fill), ``chained`` (the reference warped by
    the flow chained through the mono frames since it arrived), ``propagated`` (the previous frame's classical
    chroma moved by mono->mono flow; its error is the moved previous mono against this one, full detail) and
    ``memory`` (the previous reference, registered through the same chain). A candidate the stream does not have
    yet (frame-wise use, first frames) is a copy of ``direct`` (``fill`` for ``propagated``), so the model runs
    the same with and without history. ``memory`` is updated in place (see :class:`CCDCStream`).
    """
    st = classic.temporal_align(mono, state, memory, always_step=True)
    ref, guide, mono_w = st.ref, st.guide, st.mono_w
    fill = classic.fill_occlusions(guide, st.warped)
    direct = warp_reference(ref, st.direct)
    g = guide * (1.0 / 255.0)
    m = mono_w.astype(np.float32) * (1.0 / 255.0)

    def cand(ycc: np.ndarray) -> list[np.ndarray]:
        y, cb, cr = _norm(ycc[..., 0], ycc[..., 1], ycc[..., 2])
        return [y, cb, cr, y - g]

    d = cand(direct)
    c = cand(st.warped_chain) if st.chained is not None else d
    f = _norm(guide, fill[..., 0], fill[..., 1])[1:]
    step = st.step
    prop = [f[0], f[1], d[3]]
    mem = d
    if step is not None:
        gx, gy = ref["gx"], ref["gy"]
        moved = cv2.remap(
            memory["last"], gx + step[..., 0], gy + step[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        prop = [*_norm(moved[..., 0], moved[..., 1], moved[..., 2])[1:], moved[..., 0] * (1.0 / 255.0) - m]
        old = memory.get("old")
        if old is not None and old["ref"]["ycc"].shape[:2] == guide.shape and old["chain"].shape == step.shape:
            old["chain"] = compose_flow(step, old["chain"], gx, gy)
            mem = cand(warp_reference(old["ref"], old["chain"]))
    # this frame's mono and classical chroma, for the next frame's propagated candidate
    memory["last"] = np.dstack([mono_w.astype(np.float32), fill])
    memory["ref"] = ref
    flow = st.flow
    chans = [m, g, *d, *f, *c, *prop, *mem, flow[..., 0] * (1.0 / 32.0), flow[..., 1] * (1.0 / 32.0)]
    st.fill = fill
    return np.stack(chans, 0).astype(np.float32), st


def push_memory(memory: dict[str, Any]) -> None:
    """A new reference arrived: the current chain becomes the earlier reference's registration (``old``)."""
    if "ref" in memory and "chain" in memory:
        memory["old"] = {"ref": memory["ref"], "chain": memory["chain"]}
    memory.pop("chain", None)
    # keep "prev" and "last": the mono->mono flow continues across references


# --- backends ------------------------------------------------------------------------------------------------


def _torch_forward(graph: str):
    """The computation of graph ``graph`` (fast, paper or reference) for the torch backend."""

    def forward(net, t: dict) -> dict:
        if graph == "reference":
            return {f"ref{i}": o for i, o in enumerate(net.reference_branch(t["ref_up"]))}
        if graph == "paper":
            return {"chroma": net(t["mono"], *[t[f"ref{i}"] for i in range(10)])}
        return {"chroma": net(t["features"])}

    return forward


def _executor(folder: Path, manifest: EngineManifest, role: str, graph: str, backend: str, threads: int | None):
    if backend == "torch":
        from streamfuse.models.ccdc_arch import build_model
        from streamfuse.runtime.torch import TorchExecutor

        outputs = [f"ref{i}" for i in range(10)] if graph == "reference" else ["chroma"]
        return TorchExecutor(
            folder / manifest.weights, build_model, manifest.arch, _torch_forward(graph), outputs, threads
        )
    from streamfuse.runtime.factory import create_executor

    opts: dict[str, Any] = {"threads": threads} if backend == "onnxruntime" else {}
    return create_executor(folder / manifest.graphs[role], backend, **opts)


# --- engines -------------------------------------------------------------------------------------------------


class CCDCEngine(Engine):
    """Fast CCDC: guided's DIS alignment + learned alignment refinement and occlusion filling at reference
    resolution, then a gated luma-guided upsampling.

    Args:
        model: shipped model name (folder under engines/) or a folder with manifest.json.
        backend: onnxruntime (default), torch, or tensorrt.
        threads: inference threads (ORT intra-op / torch).
        detail: weight of the luma-guided high-resolution detail term (None = the manifest's validated value).
        radius, eps: guided-filter radius (working pixels) and regularization of the detail term.
    """

    name = "ccdc"

    def __init__(
        self,
        model: str = "ccdc",
        backend: str = "onnxruntime",
        threads: int | None = None,
        detail: float | None = None,
        radius: int = 2,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        self.manifest, folder = load_engine_manifest(model, engine="ccdc")
        self.arch = self.manifest.arch.get("arch")
        if self.arch not in ("fast", "temporal"):
            raise EngineError(
                f"ccdc: model {model!r} is not a fast or temporal CCDC model; use engine ccdc-paper for it"
            )
        self.executor = _executor(folder, self.manifest, "model", "fast", backend, threads)
        self.detail = float(self.manifest.options.get("detail", 0.0) if detail is None else detail)
        self.radius, self.eps = int(radius), float(eps)
        self.classic = classical_engine() if self.arch == "fast" else temporal_classical_engine()
        self.reference_work = 0  # times the reference planes were built (tests prove per-reference reuse)

    def _prepare(self, state: ReferenceState) -> None:
        self.classic._prepare(state)

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        return self.colorize_with(mono, state, new_memory() if self.arch == "temporal" else None)

    def colorize_with(self, mono: np.ndarray, state: ReferenceState, memory: dict[str, Any] | None) -> np.ndarray:
        """One mono frame with a stream memory (temporal model; a fresh one = frame-wise) or none (fast model)."""
        cached = len(state.cache)
        if self.arch == "temporal":
            feats, st = temporal_features(self.classic, mono, state, memory if memory is not None else new_memory())
        else:
            st = classical_stage(self.classic, mono, state)
            feats = fast_features(st)
        self.reference_work += len(state.cache) - cached
        size = st.size
        out = self.executor.run({"features": np.ascontiguousarray(pad_to(feats, FAST_MULTIPLE)[None])})["chroma"][0]
        chroma_w = crop_chroma(out, size, 255.0, 128.0)
        chroma = upsample_chroma(mono, st.mono_w, chroma_w, self.detail, self.radius, self.eps)
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])

    def open_stream(self) -> EngineStream:
        return CCDCStream(self) if self.arch == "temporal" else EngineStream(self)


class CCDCStream(EngineStream):
    """One camera pair through the temporal ``ccdc``: flow chain, previous frame and earlier reference."""

    engine: CCDCEngine

    def __init__(self, engine: CCDCEngine) -> None:
        super().__init__(engine)
        self.memory: dict[str, Any] = new_memory()

    def _on_reference(self, state: ReferenceState) -> None:
        push_memory(self.memory)

    def reset(self) -> None:
        super().reset()
        self.memory = new_memory()

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        return self.engine.colorize_with(mono, state, self.memory)


# The classical stage's settings, pinned so a trained model keeps the inputs it was trained on even if the
# `guided` engine's defaults move (these were its defaults when the shipped model was trained).
CLASSICAL = {
    "preset": "ultrafast",
    "work_factor": 8.0,
    "work_scale": 0.5,
    "finest_scale": 0,
    "refine_iters": 2,
    "smoothness": 10.0,
    "confidence": 30.0,
    "fill_radius": 8,
    "denoise": "auto",
    "seed_flow": False,
}


def classical_engine() -> GuidedEngine:
    """The classical first stage of ``ccdc`` (training uses the same, so its inputs match inference)."""
    return GuidedEngine(**CLASSICAL)


# The temporal model's classical stage: the same guided settings plus the flow chain (guided-temporal).
TEMPORAL_CLASSICAL = {**CLASSICAL, "chain": True, "error_radius": 3, "bias": 0.0, "step_preset": "ultrafast"}


def temporal_classical_engine() -> GuidedTemporalEngine:
    """The classical first stage of the temporal ``ccdc`` (pinned like ``CLASSICAL``)."""
    return GuidedTemporalEngine(**TEMPORAL_CLASSICAL)


class CCDCPaperEngine(Engine):
    """Paper-faithful CCDC at full resolution: reference encoders once per colour frame, then per mono frame
    FlowNetS flows, feature warping, visibility maps and the U-Net decoder. Predicts chroma, keeps mono luma."""

    name = "ccdc-paper"

    def __init__(self, model: str = "ccdc-paper", backend: str = "onnxruntime", threads: int | None = None) -> None:
        super().__init__()
        self.manifest, folder = load_engine_manifest(model, engine="ccdc")
        if self.manifest.arch.get("arch") != "paper":
            raise EngineError(f"ccdc-paper: model {model!r} is not a paper CCDC model; use engine ccdc for it")
        self.ref_executor = _executor(folder, self.manifest, "reference", "reference", backend, threads)
        self.executor = _executor(folder, self.manifest, "model", "paper", backend, threads)
        self.reference_runs = 0  # reference-branch executor runs (tests prove per-reference reuse)

    def _reference_at(self, state: ReferenceState, size: tuple[int, int]) -> dict[str, np.ndarray]:
        refs = state.cache.get(("paper", size))
        if refs is None:
            up = cv2.resize(state.rgb, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) * (1.0 / 255.0)
            up = pad_to(np.clip(up, 0, 1).transpose(2, 0, 1), PAPER_MULTIPLE)[None]
            self.reference_runs += 1
            refs = self.ref_executor.run({"ref_up": np.ascontiguousarray(up)})
            state.cache[("paper", size)] = refs
        return refs

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        size = (mono.shape[1], mono.shape[0])
        refs = self._reference_at(state, size)
        m = pad_to(mono.astype(np.float32)[None] * (1.0 / 255.0), PAPER_MULTIPLE)[None]
        out = self.executor.run({"mono": np.ascontiguousarray(m), **refs})["chroma"][0]
        chroma = crop_chroma(out, size, 255.0, 128.0)
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])
