"""The learned ``duallens`` (fast, default) and ``duallens-paper`` engines for rectified mono + colour stereo rigs.

The network (streamfuse/models/duallens_arch.py) searches horizontal disparity candidates, so the pair must be
rectified (``streamfuse calibrate`` + ``streamfuse.rectify.Rectifier``), with the colour camera on the right of the
mono camera (``reference_side="left"`` flips both frames for the mirrored rig). The reference is brought to the
mono size once per reference; when the disparity range asked for exceeds what the graph searches, or the
memory estimate exceeds ``memory_gb``, the pair is processed at a reduced working size and the chroma is
upsampled with the mono luma as guide. The fast config also hands the network the classical ``guided``
colorization as a candidate, which its colour-residue stage blends per pixel with the weight-volume result.
Runs through ONNX Runtime (streamfuse.runtime); never imports torch.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma, rgb_to_ycbcr
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, ReferenceState
from streamfuse.engines.common import crop_chroma, pad_to, upsample_chroma
from streamfuse.engines.guided import GuidedEngine
from streamfuse.runtime.factory import create_executor


def guided_candidate(guided: GuidedEngine, mono: np.ndarray, ref: ReferenceState | np.ndarray) -> np.ndarray:
    """The classical candidate chroma (H×W×2 float32, 0..255): the ``guided`` engine's DIS-flow colorization."""
    return rgb_to_ycbcr(guided.colorize(mono, ref).astype(np.float32))[..., 1:]


def network_inputs(
    mono: np.ndarray, ref_ycbcr: np.ndarray, multiple: int, cand: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Graph inputs from a mono frame (H×W uint8), reference YCbCr (any size) and optionally the candidate
    chroma (H×W×2, 0..255): padded, in [0, 1]. Shared with training, so both see the same preprocessing.
    """
    h, w = mono.shape
    ycc = ref_ycbcr if ref_ycbcr.shape[:2] == (h, w) else cv2.resize(ref_ycbcr, (w, h), interpolation=cv2.INTER_CUBIC)
    y = pad_to(mono[None].astype(np.float32) * (1.0 / 255.0), multiple)
    ref = pad_to(np.clip(ycc.astype(np.float32) * (1.0 / 255.0), 0, 1).transpose(2, 0, 1), multiple)
    inputs = {"y": y[None], "ref": np.ascontiguousarray(ref[None])}
    if cand is not None:
        c = pad_to(np.clip(cand.astype(np.float32) * (1.0 / 255.0), 0, 1).transpose(2, 0, 1), multiple)
        inputs["cand"] = np.ascontiguousarray(c[None])
    return inputs


def estimate_memory_gb(arch: dict, width: float, height: float) -> float:
    """Rough (conservative) peak working memory of one inference at (width, height), in GiB.

    The feature volume (about six live copies under ONNX Runtime) plus the full-resolution shift stack.
    Checked against measured peak RSS: duallens-paper at 320x240, 2.9 GiB measured vs 2.8 estimated;
    duallens at 1280x1104, 2.0 GiB measured vs 3.4 estimated.
    """
    s, n = int(arch["stride"]), int(arch["n"])
    channels = (3 if arch.get("diff") else 2) * n
    d = math.ceil((int(arch["max_disp"]) - int(arch["min_disp"])) / s) + 1
    voxels = (width / s) * (height / s) * d
    volume = voxels * channels * 4 * 6
    stack = width * height * d * 2 * 4 * 3  # shifted chroma, weights, product at full resolution
    return (volume + stack) / 2**30


def _torch_forward(net, t: dict) -> dict:
    """The graph's computation for the torch backend: y, ref [, cand] -> cbcr."""
    return {"cbcr": net(t["y"], t["ref"], t.get("cand"))}


class DualLensEngine(Engine):
    """Weight-volume colorization of a rectified stereo pair.

    Args:
        model: shipped model name (folder under engines/) or a folder with manifest.json.
        backend: executor backend (``onnxruntime`` default; ``tensorrt`` on NVIDIA GPUs; ``torch`` from weights.pt).
        threads: intra-op threads for ONNX Runtime.
        max_disp: largest disparity (mono-size pixels) to search; None = what the graph searches. A larger
            value runs at a proportionally reduced working size.
        reference_side: where the colour camera sits relative to the mono camera after rectification.
        memory_gb: working-memory budget; larger frames run at a reduced working size to fit.
    """

    name = "duallens"
    default_model = "duallens"

    def __init__(
        self,
        model: str | None = None,
        backend: str = "onnxruntime",
        threads: int | None = None,
        max_disp: int | None = None,
        reference_side: str = "right",
        memory_gb: float = 24.0,
    ) -> None:
        super().__init__()
        if reference_side not in ("right", "left"):
            raise EngineError(f"{self.name}: reference_side must be 'right' or 'left', got {reference_side!r}")
        if memory_gb <= 0 or (max_disp is not None and max_disp < 1):
            raise EngineError(f"{self.name}: need memory_gb > 0 and max_disp >= 1")
        self.manifest, folder = load_engine_manifest(model or self.default_model, engine="duallens")
        self.arch = self.manifest.arch
        self.multiple = int(self.manifest.pad_multiple)
        self.graph_disp = int(self.arch["max_disp"])
        self.max_disp = int(max_disp or self.graph_disp)
        self.flip = reference_side == "left"
        self.memory_gb = float(memory_gb)
        if backend == "torch":
            from streamfuse.models.duallens_arch import build_model
            from streamfuse.runtime.torch import TorchExecutor

            self.executor = TorchExecutor(
                folder / self.manifest.weights, build_model, self.arch, _torch_forward, ["cbcr"], threads
            )
        else:
            opts = {"threads": threads} if threads and backend == "onnxruntime" else {}
            self.executor = create_executor(folder / self.manifest.graphs["model"], backend, **opts)
        self._guided = GuidedEngine() if self.arch.get("candidate") else None

    def downscale_factor(self, width: int, height: int) -> float:
        """Downscale factor of the working size: 1 unless the disparity range or the memory budget demand more."""
        f = max(1.0, self.max_disp / self.graph_disp)
        while estimate_memory_gb(self.arch, width / f, height / f) > self.memory_gb:
            f *= 1.25
        return f

    def _reference_at(self, state: ReferenceState, size: tuple[int, int]) -> np.ndarray:
        """Reference YCbCr at the working size (flipped for a left reference): computed once per reference."""
        cached = state.cache.get(("duallens", size))
        if cached is None:
            cached = cv2.resize(state.ycbcr, size, interpolation=cv2.INTER_CUBIC)
            if self.flip:
                cached = np.ascontiguousarray(cached[:, ::-1])
            state.cache[("duallens", size)] = cached
        return cached

    def _guided_reference(self, state: ReferenceState, size: tuple[int, int]) -> ReferenceState:
        """The guided engine's prepared reference (flipped, never larger than the working size), once per reference."""
        key = ("duallens-guided", size)
        cached = state.cache.get(key)
        if cached is None:
            rgb = state.rgb[:, ::-1] if self.flip else state.rgb
            if rgb.shape[1] > size[0] or rgb.shape[0] > size[1]:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            cached = state.cache[key] = self._guided.prepare_reference(np.ascontiguousarray(rgb))
        return cached

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        h, w = mono.shape
        f = self.downscale_factor(w, h)
        size = (w, h) if f == 1 else (max(16, round(w / f)), max(16, round(h / f)))
        mono_w = mono if f == 1 else cv2.resize(mono, size, interpolation=cv2.INTER_AREA)
        net_mono = np.ascontiguousarray(mono_w[:, ::-1]) if self.flip else mono_w
        cand = None
        if self._guided is not None:
            cand = guided_candidate(self._guided, net_mono, self._guided_reference(state, size))
        out = self.executor.run(network_inputs(net_mono, self._reference_at(state, size), self.multiple, cand))
        chroma = crop_chroma(out["cbcr"][0], size)
        if self.flip:
            chroma = chroma[:, ::-1]
        chroma = np.ascontiguousarray(chroma, dtype=np.float32)
        if f != 1:
            chroma = upsample_chroma(mono, mono_w, chroma, detail=1.0, radius=2, eps=1e-3)
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])


class DualLensPaperEngine(DualLensEngine):
    """The paper's configuration (n = 32, 8-block ResNets, 4-level 3-D encoder–decoder, volume at 1/2)."""

    name = "duallens-paper"
    default_model = "duallens-paper"
