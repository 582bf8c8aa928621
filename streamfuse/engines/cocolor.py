"""NIR colorization engines: ``cocolor`` (fast, default), ``cocolor-paper``, and the classical ``nir-localfit``.

The NIR frame (H×W uint8) takes the mono frame's place in the engine contract; the output's luma is the
*translated* visible luma, never the NIR itself.

- Reference mode (an NIR HR camera plus a colour LR camera): the colour camera carries most of the answer.
  1. Cross-spectral alignment at the colour camera's resolution: a wide local linear fit NIR→Y gives a
     translated luma whose edges sit where the NIR's are; ECC (homography) then registers the reference luma
     to it (same spectrum on both sides, unlike raw NIR against luma).
  2. ``nir-localfit`` (the classical baseline): per-pixel affine coefficients NIR→(Y, Cb, Cr) fitted locally at
     the reference resolution, bilinearly upsampled and applied to the full-resolution NIR.
  3. ``cocolor``: a small network at reference resolution sees the NIR (block mean and std), the aligned
     reference and the local-fit coefficients, and corrects the coefficients; the correction is applied
     through the same luma-guided upsampling, so the network runs on 1/16 of the pixels.
- Prior mode (NIR alone, at night): ``colorize(nir, None)``. ``cocolor`` predicts the same coefficients from
  the NIR alone (a learned prior); ``cocolor-paper`` runs the paper's NIR colorizer F_N (trained with its
  bilateral NIR↔grey translators, grey colorizer and losses; see models/cocolor_arch.py).

This module never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb, rgb_to_ycbcr, ycbcr_to_rgb
from streamfuse.engines.assets import load_engine_manifest
from streamfuse.engines.base import Engine, EngineError, EngineStream, ReferenceState, check_mono, check_scale
from streamfuse.engines.common import pad_to
from streamfuse.engines.guided import guided_coefficients
from streamfuse.runtime.base import Executor

FIT_RADIUS = 1  # classical local fit window (reference pixels), chosen on the training categories
FIT_EPS = 1e-3
ALIGN_RADIUS = 6  # wide fit that makes the translated luma used for alignment
ALIGN_ITERS = 50
MAX_ALIGN_SHIFT = 0.1  # a registration that moves a corner by more than this fraction of the image is rejected
REF_CHANNELS = 11  # g, g_std, ref Y/Cb/Cr, fit a(3), fit b(3)
PRIOR_CHANNELS = 2  # g, g_std
MULTIPLE = 16  # the fast networks downsample up to 4 times
# Prior mode predicts corrections of "NIR shown as grey" (Y = NIR, no chroma), so training starts from that baseline.
PRIOR_BASE_A = np.array([255.0, 0.0, 0.0], np.float32)
PRIOR_BASE_B = np.array([0.0, 128.0, 128.0], np.float32)
PRIOR_MAX_SIDE = 256  # the prior network runs at most at this long side (its output is smooth coefficients)


# --- the classical stage, shared by the engines and the trainer ---------------------------------------------


def nir_blocks(nir: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """NIR at a coarse size (w, h): the block mean and the block standard deviation (0..1 scale)."""
    n = nir.astype(np.float32) * (1.0 / 255.0)
    mean = cv2.resize(n, size, interpolation=cv2.INTER_AREA)
    sq = cv2.resize(n * n, size, interpolation=cv2.INTER_AREA)
    return mean, np.sqrt(np.maximum(sq - mean * mean, 0.0))


def align_reference(g: np.ndarray, ycc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Register the reference YCbCr (h×w×3 float, 0..255) to the NIR block means ``g`` (h×w, 0..1).

    A wide local fit NIR→Y makes a translated luma with the NIR's geometry; ECC (homography) then matches the
    reference luma to it. Returns the warped reference and the 3×3 warp (identity if ECC does not converge or
    runs away).
    """
    y = np.ascontiguousarray(ycc[..., 0])
    a, b = guided_coefficients(g, y, ALIGN_RADIUS, 1e-2)
    yhat = ((a * g + b) * (1.0 / 255.0)).astype(np.float32)
    warp = np.eye(3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ALIGN_ITERS, 1e-4)
    try:
        _, warp = cv2.findTransformECC(yhat, y * (1.0 / 255.0), warp, cv2.MOTION_HOMOGRAPHY, criteria, None, 3)
    except cv2.error:
        return ycc, np.eye(3, dtype=np.float32)
    h, w = g.shape
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]]).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(corners, warp.astype(np.float64))
    if not np.all(np.isfinite(moved)) or np.abs(moved - corners).max() > MAX_ALIGN_SHIFT * max(h, w):
        return ycc, np.eye(3, dtype=np.float32)  # ECC ran away (flat or unrelated content): keep the reference
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpPerspective(ycc, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE), warp


def local_fit(g: np.ndarray, ycc: np.ndarray, radius: int = FIT_RADIUS, eps: float = FIT_EPS) -> tuple:
    """Local affine NIR→(Y, Cb, Cr) coefficients (a, b), each h×w×3, fitted at the reference resolution."""
    return guided_coefficients(g, np.ascontiguousarray(ycc, dtype=np.float32), radius, eps)


def apply_coefficients(nir: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinearly upsample coefficient planes (h×w×3) to the NIR size and apply them: YCbCr float32 0..255."""
    full = (nir.shape[1], nir.shape[0])
    a_up = cv2.resize(a, full, interpolation=cv2.INTER_LINEAR)
    b_up = cv2.resize(b, full, interpolation=cv2.INTER_LINEAR)
    return a_up * (nir.astype(np.float32) * (1.0 / 255.0))[..., None] + b_up


def reference_stage(nir: np.ndarray, ref_ycc: np.ndarray, align: bool = True) -> dict[str, np.ndarray]:
    """Everything the reference-mode networks need, at the reference resolution (float32)."""
    h, w = ref_ycc.shape[:2]
    g, g_std = nir_blocks(nir, (w, h))
    ycc = ref_ycc.astype(np.float32)
    if align:
        ycc, _ = align_reference(g, ycc)
    a, b = local_fit(g, ycc)
    return {"g": g, "g_std": g_std, "ycc": ycc, "a": a, "b": b}


def ref_features(st: dict[str, np.ndarray]) -> np.ndarray:
    """Reference network input (REF_CHANNELS, h, w): NIR mean/std, aligned reference, fit coefficients (scaled)."""
    ycc = st["ycc"]
    chans = [st["g"], st["g_std"] * 4.0, ycc[..., 0] / 255.0, (ycc[..., 1] - 128) / 64.0, (ycc[..., 2] - 128) / 64.0]
    chans += [st["a"][..., c] / 255.0 for c in range(3)] + [st["b"][..., c] / 255.0 for c in range(3)]
    return np.stack(chans, 0).astype(np.float32)


def prior_features(g: np.ndarray, g_std: np.ndarray) -> np.ndarray:
    """Prior network input (PRIOR_CHANNELS, h, w)."""
    return np.stack([g, g_std * 4.0], 0).astype(np.float32)


def coefficients_from_net(out: np.ndarray, st: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Network output (6, h, w) -> coefficient planes (a, b) on the 0..255 scale; in reference mode the output
    is a correction of the local fit's coefficients, in prior mode a correction of NIR shown as grey."""
    a = out[:3].transpose(1, 2, 0) * 255.0
    b = out[3:].transpose(1, 2, 0) * 255.0
    if st is not None:
        return st["a"] + a, st["b"] + b
    return a + PRIOR_BASE_A, b + PRIOR_BASE_B


def prior_size(shape: tuple[int, int], max_side: int = PRIOR_MAX_SIDE) -> tuple[int, int]:
    """Working size (w, h) of the prior network for an H×W frame: ~1/4, at most ``max_side`` on the long side."""
    h, w = shape
    f = max(4.0, max(h, w) / max_side)
    return max(8, round(w / f)), max(8, round(h / f))


# --- NIR engines ----------------------------------------------------------------------------------------------


class NirEngine(Engine):
    """An engine that takes NIR frames: ``colorize(nir, state)`` in reference mode, ``colorize(nir, None)`` in
    prior mode. The fusion node routes NIR streams only to engines with ``accepts_nir``."""

    accepts_nir = True
    has_prior = True

    def colorize(self, mono: np.ndarray, ref: ReferenceState | np.ndarray | None) -> np.ndarray:
        """Colorize one NIR frame (H×W uint8) with a prepared colour reference, a raw one, or None (prior)."""
        nir = check_mono(mono)
        if ref is None:
            if not self.has_prior:
                raise EngineError(f"engine {self.name!r} needs a colour reference; use cocolor for NIR alone")
            return self._colorize_prior(nir)
        state = ref if isinstance(ref, ReferenceState) else self.prepare_reference(ref)
        check_scale(nir.shape, state.shape)
        return self._colorize(nir, state)

    def _colorize_prior(self, nir: np.ndarray) -> np.ndarray:
        raise EngineError(f"engine {self.name!r} has no prior mode")

    def open_stream(self) -> EngineStream:
        return NirStream(self)


class NirStream(EngineStream):
    """An NIR camera's stream: with references pushed it runs in reference mode, before any in prior mode."""

    def colorize(self, mono: np.ndarray) -> np.ndarray:
        out = self.engine.colorize(check_mono(mono), self.state)
        self.frames += 1
        return out


class NirLocalFitEngine(NirEngine):
    """Classical baseline: NIR→YCbCr local linear fit at the reference resolution, applied at full resolution
    (no alignment, no learning). Prior mode: NIR as grey."""

    name = "nir-localfit"

    def __init__(self, radius: int = FIT_RADIUS, eps: float = FIT_EPS, align: bool = False) -> None:
        super().__init__()
        self.radius, self.eps, self.align = int(radius), float(eps), bool(align)

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        h, w = state.shape
        g, _ = nir_blocks(mono, (w, h))
        ycc = state.ycbcr.astype(np.float32)
        if self.align:
            ycc, _ = align_reference(g, ycc)
        a, b = local_fit(g, ycc, self.radius, self.eps)
        return ycbcr_to_rgb(apply_coefficients(mono, a, b))

    def _colorize_prior(self, nir: np.ndarray) -> np.ndarray:
        return gray_to_rgb(nir)


class NirGreyEngine(NirEngine):
    """Baseline: the NIR frame shown as grey (ignores any reference)."""

    name = "nir-grey"

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        return gray_to_rgb(mono)

    def _colorize_prior(self, nir: np.ndarray) -> np.ndarray:
        return gray_to_rgb(nir)


def _executor(folder: Path, file: str, backend: str, threads: int | None) -> Executor:
    from streamfuse.runtime.factory import create_executor

    opts: dict[str, Any] = {"threads": threads} if backend == "onnxruntime" and threads else {}
    return create_executor(folder / file, backend, **opts)


class CoColorEngine(NirEngine):
    """Fast CoColor: cross-spectral alignment + local fit + learned coefficient correction at the reference
    resolution (reference mode); learned NIR→colour coefficients at ~1/4 resolution (prior mode).

    Args:
        model: shipped model name (folder under engines/) or a folder with manifest.json.
        backend: onnxruntime (default) or another executor backend.
        threads: inference threads.
        align: register the reference to the NIR before fitting (on by default).
    """

    name = "cocolor"

    def __init__(
        self, model: str = "cocolor", backend: str = "onnxruntime", threads: int | None = None, align: bool = True
    ) -> None:
        super().__init__()
        self.manifest, folder = load_engine_manifest(model, engine="cocolor")
        self.ref_executor = _executor(folder, self.manifest.graphs["model"], backend, threads)
        self.prior_executor = _executor(folder, self.manifest.graphs["prior"], backend, threads)
        self.align = bool(align)

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        st = reference_stage(mono, state.ycbcr, self.align)
        h, w = st["g"].shape
        feats = pad_to(ref_features(st), MULTIPLE)[None]
        out = self.ref_executor.run({"features": np.ascontiguousarray(feats)})["coeffs"][0][:, :h, :w]
        a, b = coefficients_from_net(out, st)
        return ycbcr_to_rgb(apply_coefficients(mono, a, b))

    def _colorize_prior(self, nir: np.ndarray) -> np.ndarray:
        size = prior_size(nir.shape)
        g, g_std = nir_blocks(nir, size)
        feats = pad_to(prior_features(g, g_std), MULTIPLE)[None]
        out = self.prior_executor.run({"features": np.ascontiguousarray(feats)})["coeffs"][0][:, : size[1], : size[0]]
        a, b = coefficients_from_net(np.ascontiguousarray(out))
        return ycbcr_to_rgb(apply_coefficients(nir, a, b))


class CoColorPaperEngine(NirEngine):
    """Paper-faithful CoColor: the NIR colorizer F_N (U-Net) at its working size (256 px on the long side, the
    paper's image size), its colour output carried to full resolution by a local fit on the NIR. Reference mode:
    the reference's chroma replaces the predicted chroma after the cross-spectral alignment (the translated luma
    stays the network's)."""

    name = "cocolor-paper"

    def __init__(self, model: str = "cocolor-paper", backend: str = "onnxruntime", threads: int | None = None) -> None:
        super().__init__()
        self.manifest, folder = load_engine_manifest(model, engine="cocolor-paper")
        self.executor = _executor(folder, self.manifest.graphs["model"], backend, threads)
        self.work_side = int(self.manifest.arch["work_side"])
        self.multiple = int(self.manifest.pad_multiple)

    def _predict(self, nir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F_N's YCbCr (float 0..255) at the working size, and the NIR block means there."""
        h, w = nir.shape
        f = max(1.0, max(h, w) / self.work_side)
        size = (max(16, round(w / f)), max(16, round(h / f)))
        g, _ = nir_blocks(nir, size)
        x = pad_to(g[None], self.multiple)[None]
        rgb = self.executor.run({"nir": np.ascontiguousarray(x)})["rgb"][0][:, : size[1], : size[0]]
        rgb = np.clip(rgb.transpose(1, 2, 0), 0.0, 1.0) * 255.0
        return rgb_to_ycbcr(np.ascontiguousarray(rgb, dtype=np.float32)), g

    def _colorize_prior(self, nir: np.ndarray) -> np.ndarray:
        ycc, g = self._predict(nir)
        a, b = local_fit(g, ycc, 2, 1e-3)
        return ycbcr_to_rgb(apply_coefficients(nir, a, b))

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        ycc, g = self._predict(mono)
        h, w = state.shape
        ref = state.ycbcr.astype(np.float32)
        g_ref, _ = nir_blocks(mono, (w, h))
        ref, _ = align_reference(g_ref, ref)
        chroma = cv2.resize(ref[..., 1:], (g.shape[1], g.shape[0]), interpolation=cv2.INTER_LINEAR)
        ycc = np.concatenate([ycc[..., :1], chroma], axis=2)
        a, b = local_fit(g, ycc, 2, 1e-3)
        return ycbcr_to_rgb(apply_coefficients(mono, a, b))
