"""The learned ``ccdc`` (fast, default) and ``ccdc-paper`` engines, run through ONNX Runtime by default.

``ccdc``: DIS flow aligns the reference at the working resolution (2× reference), the network (run at
reference resolution) blends three aligned candidates using their warp errors and adds a chroma residual,
which repairs misalignment and fills occlusions; the chroma is then upsampled to the mono size with an
optional (gated) luma-guided detail term. ``ccdc-paper``: the paper's full-resolution network; its reference
branch (colour and luminance encoder pyramids) runs once per colour frame in ``prepare_reference``.

This module never imports torch unless ``backend="torch"`` is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma
from streamfuse.engines.assets import load_manifest
from streamfuse.engines.base import Engine, EngineError, ReferenceState
from streamfuse.engines.guided import GuidedEngine, guided_coefficients, warp_reference
from streamfuse.runtime.base import Executor

# Kept in step with streamfuse.models.ccdc_arch.CANDIDATES (that module imports torch).
CANDIDATES = ("dis", "fill", "smooth", "zero")

FAST_MULTIPLE = 32  # CCDCFast: stride-2 stem + 3 downsamples + margin
PAPER_MULTIPLE = 64  # FlowNetS: six stride-2 levels


# --- shared feature construction (also used by training, so train and inference see the same inputs) ------


def classical_stage(classic: GuidedEngine, mono: np.ndarray, state: ReferenceState) -> dict[str, Any]:
    """The ``guided`` engine's alignment at its working size (blur-matched DIS flow, warp) plus its occlusion fill:
    the working-size planes the network needs (all float32 on a 0..255 scale)."""
    st = classic.align(mono, state)
    st["fill"] = classic.fill_occlusions(st["guide"], st["warped"])
    return st


def _norm(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> list[np.ndarray]:
    return [y * (1.0 / 255.0), (cb - 128.0) * (1.0 / 255.0), (cr - 128.0) * (1.0 / 255.0)]


def fast_features(st: Mapping[str, Any]) -> np.ndarray:
    """Network input (C, h, w) float32: mono; per candidate (DIS warp, guided's occlusion fill, smoothed-flow
    warp, no warp) its Y, Cb, Cr and luma warp error against the blur-matched guide (the visibility cue);
    the guide; the DIS flow (scaled by 1/32)."""
    ref, flow, warped, fill = st["ref"], st["flow"], st["warped"], st["fill"]
    w = flow.shape[1]
    radius = max(2, w // 24)
    smooth = cv2.blur(flow, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE)
    smooth_w = warp_reference(ref, smooth)
    g = st["guide"] * (1.0 / 255.0)
    cands = {
        "dis": (warped[..., 0], warped[..., 1], warped[..., 2]),
        "fill": (warped[..., 0], fill[..., 0], fill[..., 1]),
        "smooth": (smooth_w[..., 0], smooth_w[..., 1], smooth_w[..., 2]),
        "zero": (ref["ycc"][..., 0], ref["ycc"][..., 1], ref["ycc"][..., 2]),
    }
    chans = [st["mono_w"].astype(np.float32) * (1.0 / 255.0)]
    for name in CANDIDATES:
        y, cb, cr = _norm(*cands[name])
        chans += [y, cb, cr, y - g]
    chans += [g, flow[..., 0] * (1.0 / 32.0), flow[..., 1] * (1.0 / 32.0)]
    return np.stack(chans, 0).astype(np.float32)


def pad_to(x: np.ndarray, multiple: int) -> np.ndarray:
    """Replicate-pad the last two axes of (C, h, w) up to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="edge")


def upsample_chroma(
    mono: np.ndarray, mono_w: np.ndarray, chroma_w: np.ndarray, detail: float, radius: int, eps: float
) -> np.ndarray:
    """Working-resolution chroma (h×w×2, 0..255 scale) to the mono size: bilinear, plus ``detail`` × the
    high-resolution detail that a luma-guided filter would add (0 = none, 1 = the full guided filter)."""
    full = (mono.shape[1], mono.shape[0])
    base = cv2.resize(chroma_w, full, interpolation=cv2.INTER_LINEAR)
    if detail <= 0:
        return base
    guide = mono_w.astype(np.float32) * (1.0 / 255.0)
    a, b = guided_coefficients(guide, chroma_w, radius, eps)
    a = cv2.resize(a, full, interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, full, interpolation=cv2.INTER_LINEAR)
    guided = a * (mono.astype(np.float32) * (1.0 / 255.0))[..., None] + b
    return base + detail * (guided - base)


# --- backends ------------------------------------------------------------------------------------------------


class TorchExecutor(Executor):
    """Runs a CCDC module from its .pt weights with torch (the alternative backend; imports torch lazily)."""

    backend = "torch"

    def __init__(self, weights: Path, config: dict, graph: str, threads: int | None = None):
        try:
            import torch
        except ImportError as exc:
            from streamfuse.runtime.base import BackendUnavailable

            raise BackendUnavailable("backend torch needs `pip install streamfuse[train]`; use onnxruntime") from exc
        from streamfuse.models.ccdc_arch import build_model

        if threads:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self._net = build_model(config)
        self._net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["model"])
        self._net.eval()
        self._graph = graph
        self._inputs: list[str] = []
        self._outputs = ["chroma"] if graph != "reference" else [f"ref{i}" for i in range(10)]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            if self._graph == "reference":
                outs = self._net.reference_branch(torch.from_numpy(inputs["ref_up"]))
                return {f"ref{i}": o.numpy() for i, o in enumerate(outs)}
            if self._graph == "paper":
                refs = [torch.from_numpy(inputs[f"ref{i}"]) for i in range(10)]
                return {"chroma": self._net(torch.from_numpy(inputs["mono"]), *refs).numpy()}
            return {"chroma": self._net(torch.from_numpy(inputs["features"])).numpy()}


def _executor(folder: Path, manifest: dict, key: str, graph: str, backend: str, threads: int | None) -> Executor:
    if backend == "torch":
        return TorchExecutor(folder / manifest["weights"], manifest["arch"], graph, threads)
    from streamfuse.runtime.factory import create_executor

    opts: dict[str, Any] = {"threads": threads} if backend == "onnxruntime" else {}
    return create_executor(folder / manifest[key], backend, **opts)


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
        self.manifest, folder = load_manifest(model, "train one with `streamfuse train ccdc`")
        if self.manifest["arch"].get("arch") != "fast":
            raise EngineError(f"ccdc: model {model!r} is not a fast CCDC model; use engine ccdc-paper for it")
        self.executor = _executor(folder, self.manifest, "onnx", "fast", backend, threads)
        self.detail = float(self.manifest.get("detail", 0.0) if detail is None else detail)
        self.radius, self.eps = int(radius), float(eps)
        self.classic = classical_engine()
        self.reference_work = 0  # times the reference planes were built (tests prove per-reference reuse)

    def _prepare(self, state: ReferenceState) -> None:
        self.classic._prepare(state)

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        cached = len(state.cache)
        st = classical_stage(self.classic, mono, state)
        self.reference_work += len(state.cache) - cached
        size = st["size"]
        feats = pad_to(fast_features(st), FAST_MULTIPLE)[None]
        out = self.executor.run({"features": np.ascontiguousarray(feats)})["chroma"][0]
        chroma_w = out[:, : size[1], : size[0]].transpose(1, 2, 0) * 255.0 + 128.0
        chroma = upsample_chroma(mono, st["mono_w"], np.ascontiguousarray(chroma_w), self.detail, self.radius, self.eps)
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])


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


class CCDCPaperEngine(Engine):
    """Paper-faithful CCDC at full resolution: reference encoders once per colour frame, then per mono frame
    FlowNetS flows, feature warping, visibility maps and the U-Net decoder. Predicts chroma, keeps mono luma."""

    name = "ccdc-paper"

    def __init__(self, model: str = "ccdc-paper", backend: str = "onnxruntime", threads: int | None = None) -> None:
        super().__init__()
        self.manifest, folder = load_manifest(model, "train one with `streamfuse train ccdc`")
        if self.manifest["arch"].get("arch") != "paper":
            raise EngineError(f"ccdc-paper: model {model!r} is not a paper CCDC model; use engine ccdc for it")
        self.ref_executor = _executor(folder, self.manifest, "onnx_reference", "reference", backend, threads)
        self.executor = _executor(folder, self.manifest, "onnx", "paper", backend, threads)
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
        chroma = out[:, : size[1], : size[0]] * 255.0 + 128.0
        return merge_luma_chroma(mono, chroma[0], chroma[1])
