"""The learned ``ccdc`` (fast, default) and ``ccdc-paper`` engines, run through ONNX Runtime by default.

``ccdc``: DIS flow aligns the reference at the working resolution (2× reference), the network (run at
reference resolution) blends three aligned candidates using their warp errors and adds a chroma residual,
which repairs misalignment and fills occlusions; the chroma is then upsampled to the mono size with an
optional (gated) luma-guided detail term. ``ccdc-paper``: the paper's full-resolution network; its reference
branch (colour and luminance encoder pyramids) runs once per colour frame in ``prepare_reference``.

This module never imports torch unless ``backend="torch"`` is asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma
from streamfuse.engines.base import Engine, EngineError, ReferenceState
from streamfuse.engines.guided import PRESETS, guided_coefficients
from streamfuse.runtime.base import Executor

FAST_MULTIPLE = 32  # CCDCFast: stride-2 stem + 3 downsamples + margin
PAPER_MULTIPLE = 64  # FlowNetS: six stride-2 levels


def engines_dir() -> Path:
    """Folder of the shipped engine assets: the installed ``streamfuse_engines`` package or the repo's engines/."""
    try:
        import streamfuse_engines

        return Path(streamfuse_engines.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parents[2] / "engines"


def load_manifest(model: str | Path) -> tuple[dict, Path]:
    """Read ``<model>/manifest.json`` (a shipped model name or a folder path) and return it with the folder."""
    folder = Path(model) if Path(model).is_dir() else engines_dir() / str(model)
    path = folder / "manifest.json"
    if not path.is_file():
        raise EngineError(
            f"no CCDC model at {folder} (manifest.json missing); train one with `streamfuse train ccdc` "
            "or reinstall streamfuse to get the shipped weights"
        )
    return json.loads(path.read_text()), folder


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (manifests record it for every weight file)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- shared feature construction (also used by training, so train and inference see the same inputs) ------


def work_size(mono_shape: tuple[int, int], ref_shape: tuple[int, int], work_factor: float) -> tuple[int, int]:
    """Working size (w, h): up to ``work_factor`` × the reference resolution, never above the mono size."""
    scale = min(mono_shape[0] / ref_shape[0], work_factor)
    w = min(mono_shape[1], max(8, round(ref_shape[1] * scale)))
    h = min(mono_shape[0], max(8, round(ref_shape[0] * scale)))
    return w, h


def reference_planes(ref_ycbcr: np.ndarray, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Reference work for the fast engine: YCbCr at the working size (float32) and its sampling grid."""
    ycc = cv2.resize(ref_ycbcr, size, interpolation=cv2.INTER_CUBIC).astype(np.float32)
    gx, gy = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
    norm = ycc.copy()
    norm[..., 0] *= 1.0 / 255.0
    norm[..., 1:] = (norm[..., 1:] - 128.0) * (1.0 / 255.0)
    return {
        "y8": np.ascontiguousarray(np.clip(np.rint(ycc[..., 0]), 0, 255).astype(np.uint8)),
        "ycc": norm,
        "gx": gx,
        "gy": gy,
    }


def fast_features(mono_w: np.ndarray, ref: Mapping[str, np.ndarray], flow: np.ndarray) -> np.ndarray:
    """Network input (C, h, w) float32: mono, then per candidate (DIS warp, smoothed-flow warp, no warp)
    its Y, Cb, Cr and warp error (the visibility cue), then the DIS flow (scaled)."""
    h, w = mono_w.shape
    y = mono_w.astype(np.float32) * (1.0 / 255.0)
    radius = max(2, w // 24)
    smooth = cv2.blur(flow, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE)
    chans = [y]
    for f in (flow, smooth, None):
        if f is None:
            cand = ref["ycc"]
        else:
            cand = cv2.remap(
                ref["ycc"],
                ref["gx"] + f[..., 0],
                ref["gy"] + f[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        chans += [cand[..., 0], cand[..., 1], cand[..., 2], cand[..., 0] - y]
    chans += [flow[..., 0] * (1.0 / 32.0), flow[..., 1] * (1.0 / 32.0)]
    return np.stack(chans, 0)


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

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

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
    """Fast CCDC: DIS alignment + learned candidate blending/occlusion filling at reference resolution.

    Args:
        model: shipped model name (folder under engines/) or a folder with manifest.json.
        backend: onnxruntime (default), torch, or tensorrt.
        threads: inference threads (ORT intra-op / torch).
        preset: DIS preset for the initial alignment (ultrafast, fast, medium).
        work_factor: alignment/network resolution as a multiple of the reference resolution.
        detail: weight of the luma-guided high-resolution detail term (None = the manifest's validated value).
    """

    name = "ccdc"

    def __init__(
        self,
        model: str = "ccdc",
        backend: str = "onnxruntime",
        threads: int | None = None,
        preset: str = "fast",
        work_factor: float = 2.0,
        detail: float | None = None,
        radius: int = 2,
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise EngineError(f"ccdc: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if work_factor < 1:
            raise EngineError(f"ccdc: work_factor must be >= 1, got {work_factor}")
        self.manifest, folder = load_manifest(model)
        if self.manifest["arch"].get("arch") != "fast":
            raise EngineError(f"ccdc: model {model!r} is not a fast CCDC model; use engine ccdc-paper for it")
        self.executor = _executor(folder, self.manifest, "onnx", "fast", backend, threads)
        self.preset = preset
        self.work_factor = float(work_factor)
        self.detail = float(self.manifest.get("detail", 0.0) if detail is None else detail)
        self.radius, self.eps = int(radius), float(eps)
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.reference_work = 0  # times the reference planes were built (tests prove per-reference reuse)

    def _reference_at(self, state: ReferenceState, size: tuple[int, int]) -> dict:
        ref = state.cache.get(size)
        if ref is None:
            self.reference_work += 1
            ref = reference_planes(state.ycbcr, size)
            state.cache[size] = ref
        return ref

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        size = work_size(mono.shape, state.shape, self.work_factor)
        ref = self._reference_at(state, size)
        full = (mono.shape[1], mono.shape[0])
        mono_w = mono if size == full else cv2.resize(mono, size, interpolation=cv2.INTER_AREA)
        flow = self._dis.calc(mono_w, ref["y8"], None)
        feats = pad_to(fast_features(mono_w, ref, flow), FAST_MULTIPLE)[None]
        out = self.executor.run({"features": np.ascontiguousarray(feats)})["chroma"][0]
        chroma_w = out[:, : size[1], : size[0]].transpose(1, 2, 0) * 255.0 + 128.0
        chroma = upsample_chroma(mono, mono_w, np.ascontiguousarray(chroma_w), self.detail, self.radius, self.eps)
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])


class CCDCPaperEngine(Engine):
    """Paper-faithful CCDC at full resolution: reference encoders once per colour frame, then per mono frame
    FlowNetS flows, feature warping, visibility maps and the U-Net decoder. Predicts chroma, keeps mono luma."""

    name = "ccdc-paper"

    def __init__(self, model: str = "ccdc-paper", backend: str = "onnxruntime", threads: int | None = None) -> None:
        super().__init__()
        self.manifest, folder = load_manifest(model)
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
