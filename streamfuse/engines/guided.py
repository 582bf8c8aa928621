"""The classical ``guided`` engine: DIS flow alignment, chroma backward warp, luma-guided refinement.

No weights. It is the fast fallback and the baseline every learned engine must beat.

1. Alignment. The mono luma is blurred to the reference's resolution (area down, cubic up) so both DIS inputs
   carry the same detail, then DIS flow runs from it to the upsampled reference luma at the mono resolution.
2. Warp. The reference Y, Cb and Cr are backward-warped along the flow.
3. Refinement, guided by the mono luma, that does not copy luma texture into clean chroma (on 4:2:0 video the
   true chroma is itself smooth, DESIGN §7):
   - occlusion fill: where the warped reference luma disagrees with the mono luma (occlusion, flow failure),
     chroma comes from a confidence-weighted local linear fit of chroma on mono luma over the neighbourhood;
   - denoising: a noisy reference (estimated from its luma) is smoothed once per reference, and only then
     does a guided-filter detail term (gated by the noise level) steer chroma edges by the mono luma.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamfuse.color import rgb_to_ycbcr, ycbcr_to_rgb
from streamfuse.engines.base import Engine, EngineError, ReferenceState

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
NOISE_FLOOR = 2.0  # reference luma noise std (0..255, net of texture) below which it counts as clean
NOISE_RAMP = 0.5  # the detail term fades in over this much noise above the floor
FILL_DOWN = 2  # the occlusion fill fits its local models at 1/2 of the working resolution
MAX_DIS_SIZES = 4  # DIS objects kept, one per working size (see GuidedEngine._dis_for)


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


def estimate_noise(gray: np.ndarray, block: int = 8, quantile: float = 10.0) -> float:
    """Std of white noise in a grey image, in its own units.

    The Laplacian-difference response (Immerkær) is pooled over blocks, and a low quantile of the block
    energies is taken, so texture and edges (present in few blocks' worth of flat area) do not count as noise.
    """
    g = gray.astype(np.float32)
    if min(g.shape) < block + 2:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = cv2.filter2D(g, -1, kernel)[1:-1, 1:-1]
    h, w = (resp.shape[0] // block) * block, (resp.shape[1] // block) * block
    energy = (resp[:h, :w] ** 2).reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    return float(np.sqrt(np.percentile(energy, quantile)) / 6.0)  # the kernel's gain on white noise is 6


def weighted_linear_fill(
    guide: np.ndarray, chroma: np.ndarray, weight: np.ndarray, radius: int, eps: float
) -> np.ndarray:
    """Chroma predicted from ``guide`` by local linear models fitted on the pixels with high ``weight``.

    All inputs are at the fitting resolution; returns per-pixel coefficients (a, b): chroma ≈ a·guide + b.
    """
    w = weight + 1e-4
    sw = box(w, radius)
    mean_y = box(w * guide, radius) / sw
    var_y = box(w * guide * guide, radius) / sw - mean_y * mean_y
    w3 = w[..., None]
    mean_c = box(w3 * chroma, radius) / sw[..., None]
    cov = box(w3 * chroma * guide[..., None], radius) / sw[..., None] - mean_y[..., None] * mean_c
    a = cov / (var_y[..., None] + eps)
    b = mean_c - a * mean_y[..., None]
    return np.concatenate([a, b], axis=2)


def warp_reference(ref: dict, flow: np.ndarray) -> np.ndarray:
    """Backward-warp the working-size reference YCbCr along a flow field (bilinear, replicated borders)."""
    gx, gy = ref["gx"] + flow[..., 0], ref["gy"] + flow[..., 1]
    return cv2.remap(ref["ycc"], gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class Alignment:
    """The colour reference aligned to one mono frame at the working size (guided's stage; others build on it)."""

    size: tuple[int, int]  # working size (w, h)
    mono_w: np.ndarray  # mono at the working size, uint8
    guide: np.ndarray  # mono blurred to the reference's detail, float32
    ref: dict  # the cached reference planes at the working size
    flow: np.ndarray  # DIS flow from the mono frame to the reference
    warped: np.ndarray  # reference YCbCr warped onto the mono frame, float32 0..255
    fill: np.ndarray | None = None  # occlusion-filled warped chroma, when a caller computes it
    # guided-temporal's chain through the mono frames since the reference (None on a frame-wise call)
    direct: np.ndarray | None = None  # the direct flow, before the per-pixel choice
    chained: np.ndarray | None = None  # the flow chained frame to frame
    use_chain: np.ndarray | None = None  # per-pixel weight of the chained warp
    step: np.ndarray | None = None  # flow from the previous mono frame to this one
    err_direct: np.ndarray | None = None  # warp error of the direct warp
    err_chain: np.ndarray | None = None  # warp error of the chained warp
    warped_chain: np.ndarray | None = None  # the reference warped along the chain


class GuidedEngine(Engine):
    """DIS flow from mono luma to reference luma, backward warp of chroma, luma-guided refinement.

    Args:
        preset: DIS preset, one of ultrafast, fast, medium.
        work_factor: alignment runs at up to this multiple of the reference resolution (capped at the mono one).
        work_scale: alignment runs at up to this fraction of the mono resolution (never below the reference's);
            colour carries no finer detail than the reference, so half the mono resolution loses little.
        radius: guided-filter radius of the detail term, in working-resolution pixels.
        eps: guided-filter regularization on a 0..1 luma scale; larger keeps less luma detail in chroma.
        detail: weight of the luma-steered detail term (0 = plain warped chroma, 1 = full guided filter). It
            applies in proportion to the reference noise (none on a clean reference), unless ``denoise`` is off,
            in which case it always applies at this weight.
        seed_flow: start DIS from the previous frame's flow while the reference is unchanged.
        finest_scale: finest DIS pyramid level (0 = working resolution); None keeps the preset's.
        refine_iters: DIS variational refinement iterations; None keeps the preset's.
        smoothness: DIS variational refinement smoothness weight (alpha); lower keeps small moving objects.
        confidence: warp-error scale (0..255 luma units) of the occlusion fill; 0 turns the fill off.
        fill_radius: neighbourhood radius of the occlusion fill, in working-resolution pixels.
        denoise: smooth a noisy reference's chroma and gate the detail term by its noise ("auto" or "off").
    """

    name = "guided"

    def __init__(
        self,
        preset: str = "ultrafast",
        work_factor: float = 8.0,
        work_scale: float = 0.5,
        radius: int = 2,
        eps: float = 1e-3,
        detail: float = 1.0,
        seed_flow: bool = True,
        finest_scale: int | None = 0,
        refine_iters: int | None = 2,
        smoothness: float = 10.0,
        confidence: float = 30.0,
        fill_radius: int = 8,
        denoise: str = "auto",
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise EngineError(f"guided: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if work_factor < 1:
            raise EngineError(f"guided: work_factor must be >= 1, got {work_factor}")
        if not 0 < work_scale <= 1:
            raise EngineError(f"guided: work_scale must be in (0, 1], got {work_scale}")
        if radius < 1 or eps <= 0 or not 0 <= detail <= 1:
            raise EngineError("guided: need radius >= 1, eps > 0 and 0 <= detail <= 1")
        if confidence < 0 or fill_radius < FILL_DOWN or smoothness <= 0:
            raise EngineError(f"guided: need confidence >= 0, fill_radius >= {FILL_DOWN} and smoothness > 0")
        if denoise not in ("auto", "off"):
            raise EngineError(f"guided: denoise must be 'auto' or 'off', got {denoise!r}")
        self.preset = preset
        self.work_factor = float(work_factor)
        self.work_scale = float(work_scale)
        self.radius = int(radius)
        self.eps = float(eps)
        self.detail = float(detail)
        self.seed_flow = bool(seed_flow)
        self.confidence = float(confidence)
        self.fill_radius = int(fill_radius)
        self.denoise = denoise
        self.finest_scale = None if finest_scale is None else int(finest_scale)
        self.refine_iters = None if refine_iters is None else int(refine_iters)
        self.smoothness = float(smoothness)
        # OpenCV 5.0.0's DIS keeps buffers sized by the first frame it sees and segfaults on another size, so each
        # working size gets its own DIS object (a stream that changes size, e.g. a camera that reconnects).
        self._dis_by_size: dict[tuple[int, int], cv2.DISOpticalFlow] = {}
        self._scratch: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    def _dis_for(self, size: tuple[int, int]) -> cv2.DISOpticalFlow:
        """The DIS object for one (W, H) working size; the few most recent sizes are kept."""
        dis = self._dis_by_size.pop(size, None)
        if dis is None:
            dis = cv2.DISOpticalFlow_create(PRESETS[self.preset])
            if self.finest_scale is not None:
                dis.setFinestScale(self.finest_scale)
            if self.refine_iters is not None:
                dis.setVariationalRefinementIterations(self.refine_iters)
            dis.setVariationalRefinementAlpha(self.smoothness)
        self._dis_by_size[size] = dis  # most recent last
        while len(self._dis_by_size) > MAX_DIS_SIZES:
            del self._dis_by_size[next(iter(self._dis_by_size))]
        return dis

    # --- reference work (once per reference and working size) ---------------------------------------

    def _prepare(self, state: ReferenceState) -> None:
        ycc = rgb_to_ycbcr(state.rgb.astype(np.float32))
        state.features["ycc"] = ycc
        state.features["ref_noise"] = estimate_noise(ycc[..., 0])

    def _reference_noise(self, state: ReferenceState, mono_at_ref: np.ndarray) -> float:
        """Noise std of the reference luma, less what its texture explains.

        The mono frame seen at the reference's resolution has the same texture but s× less noise, so its
        estimate measures the texture part; the difference of the squares is the reference's own noise.
        """
        texture = estimate_noise(mono_at_ref)
        return float(np.sqrt(max(0.0, state.features["ref_noise"] ** 2 - texture**2)))

    @staticmethod
    def _denoise_reference(ycc: np.ndarray, noise: float) -> np.ndarray:
        """Edge-preserving smoothing of a noisy reference (all three planes), scaled to its noise level."""
        return cv2.bilateralFilter(ycc, d=-1, sigmaColor=3.0 * noise, sigmaSpace=1.5)

    def _work_size(self, mono_shape: tuple[int, int], ref_shape: tuple[int, int]) -> tuple[int, int]:
        gap = mono_shape[0] / ref_shape[0]
        scale = min(gap, self.work_factor, max(1.0, gap * self.work_scale))
        w = min(mono_shape[1], max(8, round(ref_shape[1] * scale)))
        h = min(mono_shape[0], max(8, round(ref_shape[0] * scale)))
        return w, h

    def _reference_at(self, state: ReferenceState, size: tuple[int, int], mono_at_ref: np.ndarray) -> dict:
        """Reference planes and sampling grid at the working size: computed once per reference.

        The noise decision needs one mono frame (to tell texture from noise), so it is made at the first
        mono frame of each reference and kept with it.
        """
        cached = state.cache.get(size)
        if cached is None:
            noise = self._reference_noise(state, mono_at_ref)
            ycc = state.features["ycc"]
            if self.denoise == "auto" and noise > NOISE_FLOOR:
                ycc = self._denoise_reference(ycc, noise)
            ycc = cv2.resize(ycc, size, interpolation=cv2.INTER_CUBIC)
            gx, gy = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
            y8 = np.clip(np.rint(ycc[..., 0]), 0, 255).astype(np.uint8)
            cached = {"y8": y8, "ycc": ycc, "gx": gx, "gy": gy, "noise": noise}
            state.cache[size] = cached
        return cached

    # --- per mono frame -----------------------------------------------------------------------------

    def _flow(self, guide8: np.ndarray, ref: dict, state: ReferenceState) -> np.ndarray:
        prev = state.features.get("flow") if self.seed_flow else None
        # DIS starts from the flow it is handed when that array is non-empty.
        seed = prev.copy() if prev is not None and prev.shape[:2] == guide8.shape else None
        flow = self._dis_for((guide8.shape[1], guide8.shape[0])).calc(guide8, ref["y8"], seed)
        state.features["flow"] = flow
        return flow

    def _fill_occlusions(self, guide: np.ndarray, warped: np.ndarray) -> np.ndarray:
        """Blend warped chroma toward a local luma->chroma fit where the warp disagrees with the mono luma."""
        h, w = guide.shape
        wy, wcb, wcr = cv2.split(warped)
        err = cv2.absdiff(guide, wy)
        conf = cv2.exp(cv2.multiply(err, err, scale=-1.0 / (self.confidence * self.confidence)))
        low = (max(1, w // FILL_DOWN), max(1, h // FILL_DOWN))
        coef = weighted_linear_fill(
            cv2.resize(guide, low, interpolation=cv2.INTER_AREA),
            cv2.resize(warped[..., 1:], low, interpolation=cv2.INTER_AREA),
            cv2.resize(conf, low, interpolation=cv2.INTER_AREA),
            max(1, self.fill_radius // FILL_DOWN),
            eps=50.0,  # (0..255 luma)²: a local fit needs a luma contrast of ~7 levels to follow it
        )
        a_cb, a_cr, b_cb, b_cr = cv2.split(cv2.resize(coef, (w, h), interpolation=cv2.INTER_LINEAR))
        miss = 1.0 - conf
        planes = []
        for a, b, warped_c in ((a_cb, b_cb, wcb), (a_cr, b_cr, wcr)):
            fill = cv2.add(cv2.multiply(a, guide), b)  # the local fit a·Y + b
            planes.append(cv2.add(warped_c, cv2.multiply(cv2.subtract(fill, warped_c), miss)))
        return cv2.merge(planes)

    def _detail_weight(self, noise: float) -> float:
        if self.denoise == "off":
            return self.detail
        gate = np.clip((noise - NOISE_FLOOR) / NOISE_RAMP, 0.0, 1.0)
        return float(self.detail * gate)

    def _add_detail(self, mono_w: np.ndarray, chroma: np.ndarray, weight: float) -> np.ndarray:
        """Guided-filter refinement of chroma steered by the mono luma, blended in with ``weight``."""
        guide = mono_w.astype(np.float32) * (1.0 / 255.0)
        a, b = guided_coefficients(guide, chroma, self.radius, self.eps)
        filtered = a * guide[..., None] + b
        return chroma + weight * (filtered - chroma)

    def align(self, mono: np.ndarray, state: ReferenceState) -> Alignment:
        """Blur-matched DIS alignment of the reference to a mono frame, at the working size.

        Returns an :class:`Alignment`; learned engines build on this stage.
        """
        full = (mono.shape[1], mono.shape[0])
        size = self._work_size(mono.shape, state.shape)
        mono_w = mono if size == full else cv2.resize(mono, size, interpolation=cv2.INTER_AREA)
        # Match the mono luma's detail to the reference's before flow: area down to it, cubic back up.
        ref_size = (state.shape[1], state.shape[0])
        mono_at_ref = cv2.resize(mono_w, ref_size, interpolation=cv2.INTER_AREA).astype(np.float32)
        ref = self._reference_at(state, size, mono_at_ref)
        guide = cv2.resize(mono_at_ref, size, interpolation=cv2.INTER_CUBIC)
        guide8 = np.clip(np.rint(guide), 0, 255).astype(np.uint8) if ref_size != size else mono_w
        flow = self._flow(guide8, ref, state)
        warped = warp_reference(ref, flow)
        return Alignment(size=size, mono_w=mono_w, guide=guide, ref=ref, flow=flow, warped=warped)

    def fill_occlusions(self, guide: np.ndarray, warped: np.ndarray) -> np.ndarray:
        """Warped chroma with occlusions filled (see ``_fill_occlusions``); plain warped chroma when disabled."""
        return self._fill_occlusions(guide, warped) if self.confidence > 0 else warped[..., 1:]

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        st = self.align(mono, state)
        chroma = self.fill_occlusions(st.guide, st.warped)
        weight = self._detail_weight(st.ref["noise"])
        if weight > 0:
            chroma = self._add_detail(st.mono_w, chroma, weight)
        return self._to_rgb(mono, chroma)

    def _to_rgb(self, mono: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """Upsample chroma to the mono size and merge with the mono luma, in reused full-size buffers.

        Fresh multi-megabyte arrays per frame cost more in page faults than the arithmetic, so the float
        planes live in scratch buffers kept for the last frame size (an engine serves one stream).
        """
        h, w = mono.shape
        buf = self._scratch.get((h, w))
        if buf is None:
            planes = {k: np.empty((h, w), np.float32) for k in ("y", "cb", "cr")}
            buf = {**planes, "ycc": np.empty((h, w, 3), np.float32), "rgb": np.empty((h, w, 3), np.float32)}
            self._scratch = {(h, w): buf}
        np.copyto(buf["y"], mono)
        cb, cr = cv2.split(chroma)
        if cb.shape != (h, w):
            cb = cv2.resize(cb, (w, h), dst=buf["cb"], interpolation=cv2.INTER_LINEAR)
            cr = cv2.resize(cr, (w, h), dst=buf["cr"], interpolation=cv2.INTER_LINEAR)
        cv2.merge([buf["y"], cb, cr], dst=buf["ycc"])
        return ycbcr_to_rgb(buf["ycc"], scratch=buf["rgb"])
