"""The learned ``scsnet`` (fast, default) and ``scsnet-paper`` engines: colorize and super-resolve at any scale.

The mono frame is *smaller* than the output: ``load_engine("scsnet", scale=2.5).colorize(mono, state)`` returns
round(H·2.5)×round(W·2.5)×3 RGB. ``state`` is ``prepare_reference(ref_rgb)`` (referential mode; the reference may
have any resolution) or ``None`` (automatic mode).

Per frame (numpy + ONNX Runtime, no torch):

1. referential mode only: the ``guided`` engine's alignment stage (blur-matched DIS flow) runs between the
   bicubic-upsampled mono and the reference blurred to the mono's detail, at ``align_scale`` of the output size;
   the flow, upsampled, backward-warps the *sharp* full-size reference (``guided.warp_reference``), and guided's
   occlusion fill gives the base chroma;
2. the network (``streamfuse.models.scsnet_arch``) runs at the mono resolution and its continuous pixel mapping
   head at the output resolution, predicting Y, Cb, Cr residuals over the bicubic luma and the aligned chroma.

The reference's PVCAttn keys and values (and its full-size planes) are computed once per reference and output
size and kept on the ``ReferenceState``, so a stream reuses them for every frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.color import rgb_to_ycbcr, ycbcr_to_rgb
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, ReferenceState, check_mono, check_reference
from streamfuse.engines.guided import GuidedEngine, warp_reference
from streamfuse.runtime.base import Executor

MIN_SCALE, MAX_SCALE = 1.0, 8.0
DETAIL_SIGMA = 10.0 / 255.0  # luma disagreement (blur vs bicubic) at which the reference detail is gated off by 1/e
DETAIL_BLUR = 1.5  # pixels: the disagreement is smoothed before gating
IMAGE_HINTS = 7  # kept in step with streamfuse.models.scsnet_arch (which imports torch)
HINT_CHANNELS = IMAGE_HINTS + 4  # + relative x, relative y, 1/scale, mode


def output_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """(H, W) of the output for an h×w mono frame: round(h·scale), round(w·scale)."""
    return max(1, round(h * scale)), max(1, round(w * scale))


def relative_coords(n_out: int, n_in: int) -> np.ndarray:
    """CPM local coordinate (paper Eq. 3) of each output pixel inside its input pixel, in [-1, 1)."""
    u = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out)
    return ((u - np.floor(u)) * 2.0 - 1.0).astype(np.float32)


def _norm_ycc(ycc: np.ndarray) -> np.ndarray:
    """(H, W, 3) YCbCr 0..255 -> (3, H, W) float32: Y/255, (Cb-128)/255, (Cr-128)/255."""
    out = ycc.astype(np.float32).transpose(2, 0, 1) * (1.0 / 255.0)
    out[1:] -= 128.0 / 255.0
    return np.ascontiguousarray(out)


def fit_reference(ref_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A reference of any resolution resized to (W, H): area when shrinking, cubic when enlarging."""
    if (ref_rgb.shape[1], ref_rgb.shape[0]) == size:
        return ref_rgb
    shrink = size[0] * size[1] < ref_rgb.shape[0] * ref_rgb.shape[1]
    return cv2.resize(ref_rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def align_classic() -> GuidedEngine:
    """The ``guided`` engine whose alignment and occlusion fill SCSNet builds on."""
    return GuidedEngine(preset="ultrafast", detail=0.0, seed_flow=False)


def reference_planes(ref_rgb: np.ndarray, lr: tuple[int, int], out: tuple[int, int], work: tuple[int, int]) -> dict:
    """Everything that depends only on the reference and the sizes (lr, out, work are (W, H)).

    ``ycc``: the full-size sharp reference (warped per frame); ``ref_lr``: its LR planes (the PVCAttn input);
    ``work_rgb``: the reference at the alignment size with the mono's detail (area to LR, cubic up), so the
    DIS inputs match; ``gx``/``gy``: the output sampling grid.
    """
    hr = fit_reference(ref_rgb, out)
    ycc = rgb_to_ycbcr(hr.astype(np.float32))
    low = cv2.resize(hr, lr, interpolation=cv2.INTER_AREA)
    work_rgb = low if work == lr else cv2.resize(low, work, interpolation=cv2.INTER_CUBIC)
    gx, gy = np.meshgrid(np.arange(out[0], dtype=np.float32), np.arange(out[1], dtype=np.float32))
    return {
        "ycc": ycc,
        "ref_lr": _norm_ycc(rgb_to_ycbcr(low.astype(np.float32))),
        "work_rgb": work_rgb,
        "gx": gx,
        "gy": gy,
    }


def work_size(lr: tuple[int, int], out: tuple[int, int], align_scale: float) -> tuple[int, int]:
    """Alignment size (W, H): ``align_scale`` of the output, never below the mono's."""
    return (
        min(out[0], max(lr[0], round(out[0] * align_scale))),
        min(out[1], max(lr[1], round(out[1] * align_scale))),
    )


def align(classic: GuidedEngine, mono: np.ndarray, planes: dict, work_state: ReferenceState) -> dict:
    """Guided's alignment at the work size, then the sharp full-size reference warped along the upsampled flow.

    Returns ``warped`` (H, W, 3) YCbCr and ``fill`` (H, W, 2) occlusion-filled chroma, float32 0..255.
    """
    out = (planes["gx"].shape[1], planes["gx"].shape[0])
    work = (work_state.shape[1], work_state.shape[0])
    mono_w = mono if work == (mono.shape[1], mono.shape[0]) else cv2.resize(mono, work, interpolation=cv2.INTER_CUBIC)
    st = classic.align(mono_w, work_state)
    fill = classic.fill_occlusions(st.guide, st.warped)
    flow = st.flow
    if work != out:
        flow = cv2.resize(flow, out, interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= out[0] / work[0]
        flow[..., 1] *= out[1] / work[1]
        fill = cv2.resize(fill, out, interpolation=cv2.INTER_LINEAR)
    warped = warp_reference(planes, flow)
    return {"warped": warped, "fill": fill}


def coordinate_planes(h: int, w: int, scale: float) -> list[np.ndarray]:
    """The CPM planes of an h×w input at ``scale`` (each H×W): relative x, relative y (paper Eq. 3), 1/scale."""
    out_h, out_w = output_size(h, w, scale)
    ones = np.ones((out_h, out_w), np.float32)
    return [ones * relative_coords(out_w, w)[None, :], ones * relative_coords(out_h, h)[:, None], ones / scale]


def build_inputs(
    mono: np.ndarray, scale: float, aligned: dict | None, coords: list[np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Network inputs (batch axis included) of one mono frame; ``aligned`` None is automatic mode.

    ``coords``: the frame size's ``coordinate_planes`` when the caller keeps them (the engine does, per size).
    Training calls this too, so the network sees exactly what the engine hands it.
    """
    h, w = mono.shape
    out_h, out_w = output_size(h, w, scale)
    coords = coordinate_planes(h, w, scale) if coords is None else coords
    bicubic = cv2.resize(mono, (out_w, out_h), interpolation=cv2.INTER_CUBIC).astype(np.float32) * (1.0 / 255.0)
    lr = np.zeros((1, 4, h, w), np.float32)
    lr[0, 0] = mono * (1.0 / 255.0)
    zero = np.zeros_like(bicubic)
    if aligned is None:
        planes = [bicubic, zero, zero, zero, zero, zero, zero, *coords, zero]
    else:
        warped, fill = aligned["warped"], aligned["fill"]
        warped_lr = cv2.resize(warped, (w, h), interpolation=cv2.INTER_AREA)
        lr[0, 1:] = _norm_ycc(warped_lr)
        blur = cv2.resize(warped_lr[..., 0], (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        wy, wcb, wcr = cv2.split(warped)
        fcb, fcr = cv2.split(fill)
        base = detail_transfer(bicubic, wy * (1.0 / 255.0), blur * (1.0 / 255.0))
        chroma_planes = [(p - 128.0) * (1.0 / 255.0) for p in (fcb, fcr, wcb, wcr)]
        planes = [base, *chroma_planes[:2], bicubic, blur * (1.0 / 255.0), *chroma_planes[2:], *coords, zero + 1.0]
    return {"lr": lr, "hints": cv2.merge(planes)[None]}


def detail_transfer(bicubic: np.ndarray, warped: np.ndarray, blur: np.ndarray) -> np.ndarray:
    """The referential luma base: bicubic luma plus the aligned reference's own detail (warped Y minus its
    LR-matched blur), gated where the blur agrees with the bicubic luma (the alignment holds; planes on 0..1).

    Where the scene is static or the alignment holds, the reference carries true high-resolution luma that no
    upsampling of the mono frame can recover; the network learns its residual over this base.
    """
    d = cv2.GaussianBlur(cv2.absdiff(blur, bicubic), (0, 0), DETAIL_BLUR)
    gate = cv2.exp(cv2.multiply(d, d, scale=-1.0 / (DETAIL_SIGMA * DETAIL_SIGMA)))
    return bicubic + gate * (warped - blur)


def to_rgb(pred: np.ndarray) -> np.ndarray:
    """Network output (H, W, 3) channels last, normalized YCbCr -> RGB uint8."""
    ycc = cv2.multiply(np.ascontiguousarray(pred, dtype=np.float32), (255.0, 255.0, 255.0, 0.0))
    return ycbcr_to_rgb(cv2.add(ycc, (0.0, 128.0, 128.0, 0.0)))


# --- backends ------------------------------------------------------------------------------------------------


def _executor(path: Path, threads: int | None) -> Executor:
    from streamfuse.runtime.factory import create_executor

    return create_executor(path, "onnxruntime", threads=threads)


class SCSNetEngine(Engine):
    """Colorization + super-resolution at any scale in [1, 8], automatic or referential.

    Args:
        scale: output size / mono size (round(H·scale) × round(W·scale)).
        model: shipped model name (engines/<model>/) or a folder with manifest.json and the ONNX graphs.
        align_scale: the reference is aligned at this fraction of the output size (never below the mono's).
        threads: ONNX Runtime intra-op threads (default 1: on the 2-core machine two ORT threads spun against
            OpenCV's and halved the measured fps, 1.4 vs 3.3 at 384x288 -> 768x576).
    """

    name = "scsnet"
    automatic = True  # colorize(mono, None) works: automatic mode
    default_model = "scsnet"
    default_align_scale = 0.5

    def __init__(
        self,
        scale: float = 2.0,
        model: str | None = None,
        align_scale: float | None = None,
        threads: int | None = 1,
    ) -> None:
        super().__init__()
        if not MIN_SCALE <= float(scale) <= MAX_SCALE:
            raise EngineError(f"{self.name}: scale must be in [{MIN_SCALE:g}, {MAX_SCALE:g}], got {scale}")
        self.output_scale = float(scale)
        self.align_scale = float(self.default_align_scale if align_scale is None else align_scale)
        if not 0 < self.align_scale <= 1:
            raise EngineError(f"{self.name}: align_scale must be in (0, 1], got {self.align_scale}")
        self.manifest, folder = load_engine_manifest(model or self.default_model, "scsnet")
        graphs = self.manifest.graphs
        self.ref_executor = _executor(folder / graphs["reference"], threads)
        self.executor = _executor(folder / graphs["model"], threads)
        self.auto_executor = _executor(folder / graphs["automatic"], threads)
        self.n_kv = 2 * len(self.manifest.arch["pools"])
        self.classic = align_classic()
        self._coord_cache: tuple[tuple[int, int], list[np.ndarray]] | None = None

    def prepare_reference(self, ref_rgb: np.ndarray | None) -> ReferenceState | None:
        """Referential mode: a colour frame of any resolution (work is cached per output size). None: automatic."""
        if ref_rgb is None:
            return None
        return super().prepare_reference(check_reference(ref_rgb))

    def colorize(self, mono: np.ndarray, ref: ReferenceState | np.ndarray | None) -> np.ndarray:
        """h×w uint8 mono -> round(h·scale)×round(w·scale)×3 uint8 RGB; ``ref`` None is automatic mode."""
        mono = check_mono(mono)
        state = ref if ref is None or isinstance(ref, ReferenceState) else self.prepare_reference(ref)
        return self._colorize(mono, state)

    def _coords(self, mono_shape: tuple[int, int]) -> list[np.ndarray]:
        """The coordinate planes of one mono size, made once (an engine serves one stream)."""
        if self._coord_cache is None or self._coord_cache[0] != mono_shape:
            self._coord_cache = (mono_shape, coordinate_planes(*mono_shape, self.output_scale))
        return self._coord_cache[1]

    def _reference_at(self, state: ReferenceState, mono_shape: tuple[int, int]) -> dict[str, Any]:
        """Reference work for one mono size: planes, the alignment state, PVCAttn keys/values (cached)."""
        h, w = mono_shape
        cached = state.cache.get((h, w))
        if cached is None:
            out_h, out_w = output_size(h, w, self.output_scale)
            work = work_size((w, h), (out_w, out_h), self.align_scale)
            planes = reference_planes(state.rgb, (w, h), (out_w, out_h), work)
            kv = self.ref_executor.run({"ref": planes["ref_lr"][None]})
            cached = {
                "planes": planes,
                "work_state": self.classic.prepare_reference(planes["work_rgb"]),
                "kv": [kv[f"kv{i}"] for i in range(self.n_kv)],
            }
            state.cache[(h, w)] = cached
        return cached

    def _colorize(self, mono: np.ndarray, state: ReferenceState | None) -> np.ndarray:
        if state is None:
            pred = self.auto_executor.run(build_inputs(mono, self.output_scale, None, self._coords(mono.shape)))
            return to_rgb(pred["ycc"][0])
        ref = self._reference_at(state, mono.shape)
        aligned = align(self.classic, mono, ref["planes"], ref["work_state"])
        inputs = build_inputs(mono, self.output_scale, aligned, self._coords(mono.shape))
        inputs.update({f"kv{i}": v for i, v in enumerate(ref["kv"])})
        return to_rgb(self.executor.run(inputs)["ycc"][0])


class SCSNetPaperEngine(SCSNetEngine):
    """The paper configuration (wider, three-level PVCAttn, alignment at the output resolution)."""

    name = "scsnet-paper"
    default_model = "scsnet-paper"
    default_align_scale = 1.0
