"""The learned ``duallens`` (fast, default) and ``duallens-paper`` engines for mono + colour stereo rigs.

The network (streamfuse/models/duallens_arch.py) searches disparity candidates along rows, with the colour
camera on the right (a match sits ``d`` px to the left). The engine brings every pair to that form:

1. **Geometry.** ``geometry="auto"`` (default) estimates the pair's dominant disparity direction from a
   low-resolution DIS flow and turns both frames so it runs along the rows (exact flips/transposes near a
   multiple of 90°, a rotation otherwise); the flow's component across the baseline, smoothed, warps the
   reference so a residual misalignment of a few pixels is absorbed. ``baseline=[bx, by]`` (the colour camera's
   position relative to the mono camera, e.g. from a calibration, :func:`baseline_from_calibration`) fixes the
   direction; ``geometry="rectified"`` trusts the rig (``reference_side``) and estimates nothing.
2. **Range.** The flow's disparities along the baseline give the pair's range: the reference is pre-shifted by
   its start and the cheapest shipped graph that covers it runs (one graph per range, same weights).
3. **Memory.** The volume runs in row strips with an overlap, each within ``memory_gb``; the luma statistics
   the network normalizes by are the whole frame's, so a strip sees what the whole frame would.

The fast config also hands the network the classical ``guided`` colorization as a candidate. ``open_stream()``
reuses each frame's flow as the next frame's prior (DIS initial flow and a smoothed range), see
:class:`DualLensStream`. Runs through ONNX Runtime (streamfuse.runtime); never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import merge_luma_chroma, rgb_to_ycbcr
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, EngineStream, ReferenceState
from streamfuse.engines.common import crop_chroma, pad_to, upsample_chroma
from streamfuse.engines.guided import GuidedEngine
from streamfuse.runtime.factory import create_executor

FLOW_SIZE = 320  # longest side of the frames the geometry flow runs on
SNAP_DEG = 4.0  # a direction this close to a multiple of 90 degrees is snapped to it (exact flips, no resampling)
MOVING_PX = 1.5  # below this median disparity (mono px) a pair's direction cannot be told: the rig's is kept
ORTHO_MAX_PX = 4.0  # the orthogonal residual the reference is warped by is clipped to this
ORTHO_SPAN_PX = 40.0  # only pairs whose disparity span is at most this get the orthogonal warp


def guided_candidate(guided: GuidedEngine, mono: np.ndarray, ref: ReferenceState | np.ndarray) -> np.ndarray:
    """The classical candidate chroma (H×W×2 float32, 0..255): the ``guided`` engine's DIS-flow colorization."""
    return rgb_to_ycbcr(guided.colorize(mono, ref).astype(np.float32))[..., 1:]


def network_inputs(
    mono: np.ndarray, ref_ycbcr: np.ndarray, multiple: int, cand: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Graph inputs from a mono frame (H×W uint8), reference YCbCr (any size) and optionally the candidate
    chroma (H×W×2, 0..255): padded, in [0, 1], plus ``stats`` (the padded lumas' mean and std). Shared with
    training, so both see the same preprocessing.
    """
    h, w = mono.shape
    ycc = ref_ycbcr if ref_ycbcr.shape[:2] == (h, w) else cv2.resize(ref_ycbcr, (w, h), interpolation=cv2.INTER_CUBIC)
    y = pad_to(mono[None].astype(np.float32) * (1.0 / 255.0), multiple)
    ref = pad_to(np.clip(ycc.astype(np.float32) * (1.0 / 255.0), 0, 1).transpose(2, 0, 1), multiple)
    inputs = {"y": y[None], "ref": np.ascontiguousarray(ref[None])}
    if cand is not None:
        c = pad_to(np.clip(cand.astype(np.float32) * (1.0 / 255.0), 0, 1).transpose(2, 0, 1), multiple)
        inputs["cand"] = np.ascontiguousarray(c[None])
    inputs["stats"] = luma_stats(inputs["y"], inputs["ref"])
    return inputs


def luma_stats(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(1, 4) float32: mean and std of the mono luma and of the reference luma (channel 0), as the network
    computes them (std over the image with 1e-4 added to the variance)."""
    out = []
    for a in (y[0, 0].astype(np.float64), ref[0, 0].astype(np.float64)):
        m = a.mean()
        out += [m, math.sqrt(((a - m) ** 2).mean() + 1e-4)]
    return np.asarray([out], dtype=np.float32)


def estimate_memory_gb(arch: dict, width: float, height: float, max_disp: float | None = None) -> float:
    """Rough (conservative) peak working memory of one graph run at (width, height), in GiB.

    The feature volume (about six live copies under ONNX Runtime) plus the full-resolution shift stack.
    Checked against measured peak RSS: duallens-paper at 320x240, 2.9 GiB measured vs 2.8 estimated;
    duallens at 1280x1104, 2.0 GiB measured vs 3.4 estimated.
    """
    s, n = int(arch["stride"]), int(arch["n"])
    channels = (3 if arch.get("diff") else 2) * n
    top = int(arch["max_disp"]) if max_disp is None else max_disp
    d = math.ceil((top - int(arch["min_disp"])) / s) + 1
    voxels = (width / s) * (height / s) * d
    volume = voxels * channels * 4 * 6
    stack = width * height * d * 2 * 4 * 3  # shifted chroma, weights, product at full resolution
    return (volume + stack) / 2**30


def baseline_from_calibration(path: str | Path, colour_side: str = "right") -> tuple[float, float]:
    """The colour camera's position relative to the mono camera, in rectified image axes (x right, y down),
    from a ``streamfuse calibrate`` YAML: the engine's ``baseline`` option for that rig.

    ``colour_side``: which camera of the calibrated pair is the colour one (``right`` as calibrated, or ``left``).
    A vertical rig rectifies with columns aligned, and the direction says so.
    """
    import yaml

    raw = yaml.safe_load(Path(path).read_text())
    try:
        p = np.asarray(raw["right"]["P_rect"], dtype=np.float64).reshape(3, 4)
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineError(f"{path}: no right.P_rect 3x4 matrix; make the file with `streamfuse calibrate`") from exc
    b = -p[:2, 3]  # P2[:, 3] = f * T: the right camera sits at -T
    if colour_side == "left":
        b = -b
    norm = float(np.hypot(*b))
    if norm == 0:
        raise EngineError(f"{path}: the rectified baseline is zero")
    return float(b[0] / norm), float(b[1] / norm)


def rig_engine_options(cfg) -> dict:
    """A rig's engine options, plus ``baseline`` from its calibration for a dual-lens engine: the fusion node's
    hook, so a calibrated rig searches along its true (rectified) baseline whatever its direction.

    Added only when the options name no ``baseline``, the rig has exactly one colour camera with a calibration,
    and the engine is a dual-lens one; ``calibration_side`` of the colour camera says which side it is.
    """
    options = dict(cfg.engine.options)
    if not str(cfg.engine.name).startswith("duallens") or "baseline" in options:
        return options
    colour = [c for c in cfg.cameras.values() if c.role == "color"]
    if len(colour) == 1 and colour[0].calibration:
        options["baseline"] = list(baseline_from_calibration(colour[0].calibration, colour[0].calibration_side))
    return options


# --- orientation: turn a pair so its disparity runs along the rows --------------------------------------------


@dataclass
class Orientation:
    """How the frames are turned: ``flip`` (mirror), ``k`` quarter turns (np.rot90), or a rotation ``angle``
    (degrees, resampled) about the centre onto a canvas that holds the whole frame."""

    flip: bool = False
    k: int = 0
    angle: float = 0.0

    @classmethod
    def for_direction(cls, sx: float, sy: float) -> Orientation:
        """The orientation that maps the search direction (where a mono pixel's match lies) onto −x."""
        theta = math.degrees(math.atan2(sy, sx))
        alpha = (180.0 - theta + 180.0) % 360.0 - 180.0  # rotation that takes theta to 180 degrees
        near = round(alpha / 90.0) * 90.0
        if abs(alpha - near) <= SNAP_DEG:
            k = int(round(-near / 90.0)) % 4
            return cls(flip=True) if k == 2 else cls(k=k)
        return cls(angle=alpha)

    @property
    def identity(self) -> bool:
        return not self.flip and self.k == 0 and self.angle == 0.0

    def _matrix(self, w: int, h: int) -> tuple[np.ndarray, tuple[int, int]]:
        a = math.radians(self.angle)
        c, s = math.cos(a), math.sin(a)
        cw, ch = math.ceil(abs(w * c) + abs(h * s)), math.ceil(abs(w * s) + abs(h * c))
        r = np.array([[c, -s], [s, c]])
        t = np.array([(cw - 1) / 2, (ch - 1) / 2]) - r @ np.array([(w - 1) / 2, (h - 1) / 2])
        return np.hstack([r, t[:, None]]), (cw, ch)

    def apply(self, img: np.ndarray, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The frame (H×W[×C]) turned."""
        if self.flip:
            return np.ascontiguousarray(img[:, ::-1])
        if self.k:
            return np.ascontiguousarray(np.rot90(img, self.k))
        if self.angle:
            m, size = self._matrix(img.shape[1], img.shape[0])
            return cv2.warpAffine(img, m, size, flags=interp, borderMode=cv2.BORDER_REPLICATE)
        return img

    def undo(self, img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A turned frame back to the original (w, h) ``size``."""
        if self.flip:
            return np.ascontiguousarray(img[:, ::-1])
        if self.k:
            return np.ascontiguousarray(np.rot90(img, -self.k))
        if self.angle:
            m, _ = self._matrix(*size)
            return cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        return img


@dataclass
class PairGeometry:
    """One pair's search: its orientation, the reference pre-shift, the largest disparity searched after it,
    and the orthogonal residual (oriented frame, px) the reference is warped by (None: none)."""

    orientation: Orientation = field(default_factory=Orientation)
    offset: int = 0
    span: float = 0.0
    ortho: np.ndarray | None = None
    flow: np.ndarray | None = None  # the low-resolution flow it came from (the stream's prior)


def _dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _small(img: np.ndarray, q: float) -> np.ndarray:
    if q == 1:
        return img
    return cv2.resize(img, (max(8, round(img.shape[1] / q)), max(8, round(img.shape[0] / q))), cv2.INTER_AREA)


def low_res_flow(mono: np.ndarray, ref_luma: np.ndarray, prior: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Flow (mono -> reference, both H×W uint8) at most :data:`FLOW_SIZE` px wide, and the factor q it runs at
    (flow in low-resolution px; × q for mono px): the global shift by phase correlation, then DIS for the rest
    (DIS alone loses shifts of tens of px). ``prior``: a previous flow of that size, DIS's initial flow."""
    q = max(1.0, max(mono.shape) / FLOW_SIZE)
    a, b = _small(mono, q), _small(ref_luma, q)
    win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (tx, ty), _ = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), win)
    back = np.float32([[1, 0, tx], [0, 1, ty]])  # b'(p) = b(p + t): the global shift taken out
    b = cv2.warpAffine(
        b, back, b.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    dis = _dis()
    if prior is not None and prior.shape[:2] == a.shape:
        init = prior - np.float32([tx, ty])
        return dis.calc(a, b, np.ascontiguousarray(init, dtype=np.float32)) + np.float32([tx, ty]), q
    return dis.calc(a, b, None) + np.float32([tx, ty]), q


def dominant_direction(flow: np.ndarray) -> tuple[float, float] | None:
    """The median flow vector (mono px) if it is a direction at all: at least :data:`MOVING_PX` long, and at least
    half of the moving pixels within 45 degrees of it (a textureless or incoherent pair keeps the rig's direction)."""
    v = flow.reshape(-1, 2)
    med = np.median(v, axis=0)
    norm = float(np.hypot(*med))
    if norm < MOVING_PX:
        return None
    moving = v[np.hypot(v[:, 0], v[:, 1]) >= 0.5 * MOVING_PX]
    along = moving @ (med / norm) / np.maximum(np.hypot(moving[:, 0], moving[:, 1]), 1e-6)
    if moving.size == 0 or float(np.mean(along > math.cos(math.pi / 4))) < 0.5:
        return None
    return float(med[0]), float(med[1])


def _range(disp: np.ndarray) -> tuple[int, float]:
    """(pre-shift, span) of an along-baseline disparity sample (mono px): the 1st–99th percentile with margins."""
    lo, hi = np.percentile(disp, [1.0, 99.0])
    lo, hi = float(lo) - 6.0, float(hi) * 1.15 + 10.0
    offset = max(0, math.floor(lo))
    return offset, max(hi - offset, 16.0)


def _ortho_field(g: np.ndarray, q: float, size: tuple[int, int]) -> np.ndarray | None:
    """The smoothed orthogonal flow component (low-res px) as a full-size field in mono px, or None if small."""
    g = cv2.GaussianBlur(cv2.medianBlur(g.astype(np.float32), 5), (0, 0), 3.0) * q
    if float(np.percentile(np.abs(g), 90)) < 0.3:
        return None
    return np.clip(cv2.resize(g, size, interpolation=cv2.INTER_LINEAR), -ORTHO_MAX_PX, ORTHO_MAX_PX)


def shift_right(img: np.ndarray, offset: int) -> np.ndarray:
    """``img`` moved ``offset`` px right (edge columns repeated): the reference pre-shift by a range's start."""
    if offset <= 0:
        return img
    pad = [(0, 0), (offset, 0)] + [(0, 0)] * (img.ndim - 2)
    return np.ascontiguousarray(np.pad(img, pad, mode="edge")[:, : img.shape[1]])


def warp_rows(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``img`` resampled ``g`` px down at each pixel (img(x, y + g)): the orthogonal residual taken out."""
    h, w = g.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, xs, ys + g, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _torch_forward(net, t: dict) -> dict:
    """The graph's computation for the torch backend: y, ref [, cand], stats -> cbcr."""
    return {"cbcr": net(t["y"], t["ref"], t.get("cand"), t.get("stats"))}


class DualLensEngine(Engine):
    """Weight-volume colorization of a stereo pair (any baseline direction; see the module docstring).

    Args:
        model: shipped model name (folder under engines/) or a folder with manifest.json.
        backend: executor backend (``onnxruntime`` default; ``tensorrt`` on NVIDIA GPUs; ``torch`` from weights.pt).
        threads: intra-op threads for ONNX Runtime.
        max_disp: largest disparity (mono px) to search; None = the estimate (auto) or the graph's (rectified).
            A range beyond the largest graph runs at a proportionally reduced working size.
        reference_side: where the colour camera sits after rectification (``geometry="rectified"``, or the
            fallback direction of a pair whose disparity is too small to tell).
        memory_gb: working-memory budget of one graph run; the volume is run in row strips to stay within it.
        geometry: ``auto`` (estimate direction, orthogonal residual and range per pair) or ``rectified``.
        baseline: [bx, by], the colour camera's position relative to the mono camera (fixes the direction).
        overlap: rows of context above and below each strip (rounded up to the pad multiple).
        work_scale: the network runs at this fraction of the mono size (the chroma is then upsampled with the
            mono luma as guide): 0.5 costs a quarter.
    """

    name = "duallens"
    default_model = "duallens"
    default_memory_gb = 1.0

    def __init__(
        self,
        model: str | None = None,
        backend: str = "onnxruntime",
        threads: int | None = None,
        max_disp: int | None = None,
        reference_side: str = "right",
        memory_gb: float | None = None,
        geometry: str = "auto",
        baseline: list[float] | tuple[float, float] | None = None,
        overlap: int = 32,
        work_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0 < work_scale <= 1:
            raise EngineError(f"{self.name}: work_scale is a fraction of the mono size in (0, 1], not {work_scale}")
        self.work_scale = float(work_scale)
        if reference_side not in ("right", "left"):
            raise EngineError(f"{self.name}: reference_side must be 'right' or 'left', got {reference_side!r}")
        if geometry not in ("auto", "rectified"):
            raise EngineError(f"{self.name}: geometry must be 'auto' or 'rectified', got {geometry!r}")
        memory_gb = self.default_memory_gb if memory_gb is None else memory_gb
        if memory_gb <= 0 or (max_disp is not None and max_disp < 1):
            raise EngineError(f"{self.name}: need memory_gb > 0 and max_disp >= 1")
        if baseline is not None and (len(baseline) != 2 or not any(baseline)):
            raise EngineError(f"{self.name}: baseline is [bx, by], the colour camera's offset, not {baseline!r}")
        self.manifest, folder = load_engine_manifest(model or self.default_model, engine="duallens")
        self.arch = self.manifest.arch
        self.multiple = int(self.manifest.pad_multiple)
        self.graph_disp = int(self.arch["max_disp"])  # the config's; the graphs search a little further
        self.max_disp = None if max_disp is None else int(max_disp)
        self.flip = reference_side == "left"
        self.memory_gb = float(memory_gb)
        self.geometry = geometry
        self.baseline = None if baseline is None else (float(baseline[0]), float(baseline[1]))
        self.overlap = int(math.ceil(max(0, overlap) / self.multiple) * self.multiple)
        self.executors: dict[int, object] = {}  # largest disparity -> executor, cheapest first
        for role, file in sorted(self.manifest.graphs.items(), key=lambda kv: self._role_disp(kv[0])):
            d = self._role_disp(role)
            if backend == "torch":
                from streamfuse.models.duallens_arch import build_model
                from streamfuse.runtime.torch import TorchExecutor

                arch = {**self.arch, "max_disp": self.graph_disp if role == "model" else int(role[7:])}
                self.executors[d] = TorchExecutor(
                    folder / self.manifest.weights, build_model, arch, _torch_forward, ["cbcr"], threads
                )
            else:
                opts = {"threads": threads} if threads and backend == "onnxruntime" else {}
                self.executors[d] = create_executor(folder / file, backend, **opts)
        self.stats_input = backend == "torch" or all("stats" in ex.input_names for ex in self.executors.values())
        self._guided = GuidedEngine() if self.arch.get("candidate") else None
        self.last_geometry: PairGeometry | None = None

    def _role_disp(self, role: str) -> int:
        """The largest disparity the graph of ``role`` really searches (its candidates are padded up)."""
        d = self.graph_disp if role == "model" else int(role.removeprefix("model-d"))
        s, lo = int(self.arch["stride"]), int(self.arch["min_disp"])
        m = 2 ** int(self.arch["levels"])
        first = math.floor(lo / s)
        count = math.ceil((math.ceil((d - lo) / s) + 1) / m) * m
        return (first + count - 1) * s

    @property
    def largest_disp(self) -> int:
        return max(self.executors)

    def downscale_factor(self, width: int, height: int, span: float | None = None) -> float:
        """Downscale factor of the working size: 1 unless the disparity range exceeds the largest graph's, or
        even the thinnest strip (one pad multiple plus its overlap) of the graph it needs exceeds ``memory_gb``."""
        span = float(self.max_disp or self.graph_disp) if span is None else span
        f = max(1.0, 1.0 / self.work_scale, span / self.largest_disp)
        thinnest = self.multiple + 2 * self.overlap
        while f < 64 and estimate_memory_gb(self.arch, width / f, thinnest, self.graph_for(span / f)) > self.memory_gb:
            f *= 1.25
        return f

    def graph_for(self, span: float) -> int:
        """The largest disparity of the cheapest graph that covers ``span`` px."""
        return next((d for d in self.executors if d >= span), self.largest_disp)

    def strip_rows(self, width: int, height: int, disp: int) -> int:
        """Rows per strip (a multiple of the pad multiple) for one graph run within ``memory_gb``."""
        m = self.multiple
        rows = math.ceil(height / m) * m
        per_row = estimate_memory_gb(self.arch, width, 1.0, disp)
        fit = int((self.memory_gb / per_row - 2 * self.overlap) // m) * m
        return max(m, min(rows, fit))

    # --- reference caches ----------------------------------------------------------------------------------

    def _reference_at(self, state: ReferenceState, size: tuple[int, int]) -> np.ndarray:
        """Reference YCbCr at the working size: computed once per reference."""
        cached = state.cache.get(("duallens", size))
        if cached is None:
            cached = state.cache[("duallens", size)] = cv2.resize(state.ycbcr, size, interpolation=cv2.INTER_CUBIC)
        return cached

    def _guided_reference(self, state: ReferenceState, size: tuple[int, int], o: Orientation) -> ReferenceState:
        """The guided engine's prepared reference (never larger than the working size, flipped or turned by
        ``o``), once per reference and orientation."""
        key = ("duallens-guided", size, o.flip, o.k)
        cached = state.cache.get(key)
        if cached is None:
            rgb = state.rgb
            if rgb.shape[1] > size[0] or rgb.shape[0] > size[1]:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            cached = state.cache[key] = self._guided.prepare_reference(np.ascontiguousarray(o.apply(rgb)))
        return cached

    # --- geometry --------------------------------------------------------------------------------------------

    def _fixed_direction(self) -> tuple[float, float]:
        if self.baseline is not None:
            return -self.baseline[0], -self.baseline[1]
        return (1.0, 0.0) if self.flip else (-1.0, 0.0)

    def estimate_geometry(
        self, mono: np.ndarray, ref_luma: np.ndarray, prior: PairGeometry | None = None
    ) -> PairGeometry:
        """The pair's orientation, range and orthogonal residual (see the module docstring)."""
        if self.geometry == "rectified":
            span = float(self.max_disp or self.graph_disp)
            return PairGeometry(Orientation.for_direction(*self._fixed_direction()), 0, span)
        flow, q = low_res_flow(mono, ref_luma, None if prior is None else prior.flow)
        if self.baseline is not None:
            direction = self._fixed_direction()
        else:
            direction = dominant_direction(flow * q) or self._fixed_direction()
        orient = Orientation.for_direction(*direction)
        if orient.identity:
            oflow = flow
        else:
            oflow, _ = low_res_flow(orient.apply(_small(mono, q)), orient.apply(_small(ref_luma, q)))
        offset, span = _range(-oflow[..., 0].ravel() * q)
        if self.max_disp is not None:
            offset, span = 0, float(self.max_disp)
        if prior is not None and prior.orientation == orient:  # the stream's prior: a steadier range
            offset = min(offset, prior.offset)
            span = max(span, 0.5 * (span + prior.span))
        size = orient.apply(mono, cv2.INTER_NEAREST).shape[::-1]
        # The orthogonal residual is taken out only on small-range pairs (flow-like pairs, small baselines): on a
        # wide-baseline pair DIS's cross-baseline component is mostly occlusion noise (aloe: -0.85 dB with it).
        ortho = _ortho_field(oflow[..., 1], q, size) if span <= ORTHO_SPAN_PX else None
        return PairGeometry(orient, offset, span, ortho, flow)

    # --- inference -------------------------------------------------------------------------------------------

    def _run_graph(self, disp: int, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The graph for ``disp`` over the padded inputs, in row strips with overlap; (2, H', W') CbCr."""
        ex = self.executors[disp]
        if not self.stats_input:
            inputs = {k: v for k, v in inputs.items() if k != "stats"}
        hp, wp = inputs["y"].shape[2:]
        rows = self.strip_rows(wp, hp, disp)
        if rows >= hp:
            return ex.run(inputs)["cbcr"][0]
        if not self.stats_input:
            raise EngineError(f"{self.name}: this model's graphs have no stats input, so they cannot run in strips")
        out = np.empty((2, hp, wp), np.float32)
        for top in range(0, hp, rows):
            bottom = min(hp, top + rows)
            a, b = max(0, top - self.overlap), min(hp, bottom + self.overlap)
            strip = {k: (v if k == "stats" else np.ascontiguousarray(v[:, :, a:b])) for k, v in inputs.items()}
            out[:, top:bottom] = ex.run(strip)["cbcr"][0][:, top - a : bottom - a]
        return out

    def colorize_with(self, mono: np.ndarray, state: ReferenceState, geo: PairGeometry) -> np.ndarray:
        """Colorize with a given pair geometry (the stream passes one estimated with its prior)."""
        chroma = self.chroma_with(mono, state, geo)
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])

    def chroma_with(self, mono: np.ndarray, state: ReferenceState, geo: PairGeometry) -> np.ndarray:
        """The predicted CbCr (H×W×2 float32, 0..255) of a pair with a given geometry."""
        h, w = mono.shape
        f = self.downscale_factor(w, h, geo.span)
        size = (w, h) if f == 1 else (max(16, round(w / f)), max(16, round(h / f)))
        mono_w = mono if f == 1 else cv2.resize(mono, size, interpolation=cv2.INTER_AREA)
        ref_w = self._reference_at(state, size)
        o = geo.orientation
        net_mono, net_ref = o.apply(mono_w), o.apply(ref_w)
        net_cand = None
        if self._guided is not None and not o.angle:  # flips and quarter turns: guided runs on the turned pair
            net_cand = guided_candidate(self._guided, net_mono, self._guided_reference(state, size, o))
        elif self._guided is not None:  # a rotation: guided runs on the pair as it came, its result is turned
            cand = guided_candidate(self._guided, mono_w, self._guided_reference(state, size, Orientation()))
            net_cand = o.apply(cand)
        if geo.ortho is not None:
            g = geo.ortho if f == 1 else cv2.resize(geo.ortho, net_mono.shape[::-1]) / f
            net_ref = warp_rows(net_ref, g)
        net_ref = shift_right(net_ref, round(geo.offset / f))
        disp = self.graph_for(geo.span / f)
        inputs = network_inputs(net_mono, net_ref, self.multiple, net_cand)
        chroma = crop_chroma(self._run_graph(disp, inputs), net_mono.shape[::-1])
        chroma = np.ascontiguousarray(o.undo(chroma, size), dtype=np.float32)
        if f != 1:
            chroma = upsample_chroma(mono, mono_w, chroma, detail=1.0, radius=2, eps=1e-3)
        return chroma

    def _ref_luma(self, state: ReferenceState, size: tuple[int, int]) -> np.ndarray:
        return np.clip(self._reference_at(state, size)[..., 0], 0, 255).astype(np.uint8)

    def geometry_for(self, mono: np.ndarray, state: ReferenceState, prior: PairGeometry | None = None) -> PairGeometry:
        """The pair's estimated geometry (kept as ``last_geometry``)."""
        h, w = mono.shape
        geo = self.estimate_geometry(mono, self._ref_luma(state, (w, h)), prior)
        self.last_geometry = geo
        return geo

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        return self.colorize_with(mono, state, self.geometry_for(mono, state))

    def open_stream(self) -> DualLensStream:
        return DualLensStream(self)


class DualLensStream(EngineStream):
    """A rig's stream. Each frame's geometry starts from the previous frame's (its flow is DIS's initial flow,
    the orientation is kept, the range only widened or averaged), and the previous frame's chroma, carried to
    this frame along the mono-to-mono flow, is blended in where that carry is consistent with the mono luma
    (weight ``temporal`` × exp(−(Δluma/8)²)): a disparity/colour prior that keeps the colours steady over time."""

    def __init__(self, engine: DualLensEngine, temporal: float = 0.5) -> None:
        super().__init__(engine)
        self.temporal = float(temporal)
        self.prior: PairGeometry | None = None
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # previous mono, previous output chroma

    def reset(self) -> None:
        super().reset()
        self.prior, self._prev = None, None

    def _carry(self, mono: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """``chroma`` blended with the previous frame's, carried along the mono-to-mono flow."""
        if self._prev is None or self._prev[0].shape != mono.shape or self.temporal <= 0:
            return chroma
        prev_mono, prev_chroma = self._prev
        q = max(1.0, max(mono.shape) / FLOW_SIZE)
        flow = _dis().calc(_small(mono, q), _small(prev_mono, q), None) * q  # mono_t(p) ~ mono_t-1(p + f)
        h, w = mono.shape
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mx, my = xs + flow[..., 0], ys + flow[..., 1]
        carried_mono = cv2.remap(prev_mono, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        carried = cv2.remap(prev_chroma, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = cv2.GaussianBlur(np.abs(mono.astype(np.float32) - carried_mono), (0, 0), 1.5)
        weight = (self.temporal * np.exp(-((err / 8.0) ** 2)))[..., None]
        return chroma + weight * (carried - chroma)

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        eng: DualLensEngine = self.engine
        self.prior = eng.geometry_for(mono, state, self.prior)
        chroma = self._carry(mono, eng.chroma_with(mono, state, self.prior))
        self._prev = (mono, chroma.astype(np.float32))
        return merge_luma_chroma(mono, chroma[..., 0], chroma[..., 1])


class DualLensPaperEngine(DualLensEngine):
    """The paper's configuration (n = 32, 8-block ResNets, 4-level 3-D encoder–decoder, volume at 1/2)."""

    name = "duallens-paper"
    default_model = "duallens-paper"
    default_memory_gb = 5.0

    def __init__(self, *args, overlap: int = 64, **kwargs) -> None:
        super().__init__(*args, overlap=overlap, **kwargs)
