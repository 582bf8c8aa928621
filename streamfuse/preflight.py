"""Pre-launch checks that need the engines, the media files and the encoders (DESIGN §5: nothing starts).

They run inside ``load_config`` (registered with ``config.loader.register_prelaunch_check`` when this module is
imported, as `streamfuse run` and `streamfuse transcode` do), so each error names ``file:line: key``:

- the engine exists and accepts its options (it is constructed once; that is cheap, weights load lazily or fast);
- each file source opens and decodes its first frame, a colour camera's file has colour, and a calibrated
  camera's frames have the calibrated size;
- the scale gap: the colour reference is not larger than the mono frame (and a different aspect is warned about);
- the encoder: the codec exists here, ``crf`` is 0..51 and ``preset`` is one the encoder knows.

Checks live here rather than in ``config/`` because config sits below engines and sources in the layer order.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import luma
from streamfuse.config.loader import key_error, register_prelaunch_check
from streamfuse.config.presets import demo_video
from streamfuse.config.schema import CameraConfig, RigConfig
from streamfuse.engines import EngineError, available_engines, load_engine
from streamfuse.errors import ConfigError, SourceError
from streamfuse.nvenc import NVENC_PRESETS, pick_encoder
from streamfuse.sources.video import IMAGE_SUFFIXES, is_image_file, probe_video, read_rgb_frames

log = logging.getLogger("streamfuse.preflight")

CRF_RANGE = (0, 51)  # x264, x265 and NVENC's cq all take 0 (best) .. 51
PRESETS = set(NVENC_PRESETS) | {f"p{i}" for i in range(1, 8)}  # x264/x265 names; NVENC also takes p1..p7
ASPECT_TOLERANCE = 0.03  # relative aspect difference above which mono and colour look like different framings
MIN_SCENE_CORRELATION = 0.3  # luma correlation after alignment below which the two cameras look at different scenes


@dataclass
class Frame:
    """What a camera will deliver: the frame size after resizing/rectification, the pixel format, a first frame."""

    size: tuple[int, int]
    pix_fmt: str
    first: np.ndarray | None = None


def check_engine(cfg: RigConfig) -> None:
    """The engine exists and its constructor accepts the options (names, types and values)."""
    name = cfg.engine.name
    if name not in available_engines():
        raise key_error(cfg, "engine.name", f"unknown engine {name!r}; available: {', '.join(available_engines())}")
    try:
        load_engine(name, **cfg.engine.options)
    except (EngineError, TypeError, ValueError) as exc:
        bad = [k for k in cfg.engine.options if re.search(rf"\b{re.escape(k)}\b", str(exc))]
        key = f"engine.options.{bad[0]}" if bad else "engine.options"
        raise key_error(cfg, key, str(exc)) from None


def camera_frame(cfg: RigConfig, name: str) -> Frame | None:
    """Open a file camera's source and read its first frame; None for cameras that are not files."""
    cam = cfg.cameras[name]
    if cam.source == "synthetic" and cfg.synthetic is not None:
        return _synthetic_frame(cfg, name, cam)
    if cam.source != "file" or cam.path is None:
        return None
    key = f"cameras.{name}.path"
    path = Path(cam.path)
    try:
        if path.is_dir() or is_image_file(path):
            if path.is_dir() and not any(f.suffix.lower() in IMAGE_SUFFIXES for f in path.iterdir()):
                raise SourceError(f"image folder {path} contains no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            _ts, rgb = next(iter(read_rgb_frames(path, cam.fps)))
            frame = Frame((rgb.shape[1], rgb.shape[0]), "rgb24", rgb)
        else:
            info = probe_video(path)
            frame = Frame((info.width, info.height), info.pix_fmt or "?", info.first)
    except SourceError as exc:
        raise key_error(cfg, key, str(exc)) from None
    if cam.role == "color" and frame.pix_fmt.startswith(("gray", "mono", "y400")):
        raise key_error(cfg, key, f"{path} is greyscale ({frame.pix_fmt}); the colour camera needs a colour source")
    if cam.size:
        frame.size = cam.size
    if cam.calibration:
        frame.size = _calibrated_size(cfg, name, cam, frame.size)
    return frame


def _synthetic_frame(cfg: RigConfig, name: str, cam: CameraConfig) -> Frame:
    """The synthetic rig's frame size for one of its cameras (the scene size, the colour camera s× coarser)."""
    from streamfuse.camera_model import reference_size

    syn = cfg.synthetic
    size = syn.size
    if size is None:
        try:
            _ts, rgb = next(iter(read_rgb_frames(syn.video or demo_video())))
        except (SourceError, StopIteration) as exc:
            raise key_error(cfg, "synthetic.video", str(exc) or f"{syn.video} has no frames") from None
        size = (rgb.shape[1] // 8 * 8, rgb.shape[0] // 8 * 8)
    if cam.role == "color":
        size = reference_size(size[0], size[1], syn.scale)
    frame = Frame(tuple(size), "rgb24")
    if cam.calibration:
        frame.size = _calibrated_size(cfg, name, cam, frame.size)
    return frame


def _calibrated_size(cfg: RigConfig, name: str, cam: CameraConfig, size: tuple[int, int]) -> tuple[int, int]:
    """The rectified size; the frames must have the size the rig was calibrated at."""
    from streamfuse.rectify import Rectifier

    try:
        rect = Rectifier.load(cam.calibration, cam.calibration_side)
    except ConfigError as exc:
        raise key_error(cfg, f"cameras.{name}.calibration", str(exc)) from None
    if tuple(rect.image_size) != tuple(size):
        raise key_error(
            cfg,
            f"cameras.{name}.calibration",
            f"was made at {rect.image_size[0]}x{rect.image_size[1]} but this camera delivers {size[0]}x{size[1]} "
            f"frames; recalibrate at this size, or set cameras.{name}.size: {rect.image_size[0]}x{rect.image_size[1]}",
        )
    return rect.output_size


def check_sources(cfg: RigConfig) -> None:
    """Every file source opens; sizes, calibration and the scale gap fit; scene mismatches are warned about."""
    frames = {name: camera_frame(cfg, name) for name in cfg.cameras}
    mono = frames.get(cfg.mono_camera)
    if not cfg.color_cameras:  # an NIR camera alone: nothing to compare it with
        return
    colour_name = cfg.color_cameras[0]
    colour = frames.get(colour_name)
    if mono is None or colour is None:
        return
    (mw, mh), (cw, ch) = mono.size, colour.size
    key = f"cameras.{colour_name}.path"
    if cw > mw * 1.01 or ch > mh * 1.01:
        raise key_error(
            cfg,
            key,
            f"the colour reference ({cw}x{ch}) is larger than the mono frame ({mw}x{mh}); the scale gap s = H/h "
            f"must be >= 1: give the higher-resolution file as --mono, or set cameras.{colour_name}.size",
        )
    aspect = (mw / mh) / (cw / ch)
    if mono.first is not None and colour.first is not None and not cfg.cameras[colour_name].calibration:
        first = cv2.resize(mono.first, mono.size) if mono.first.shape[1::-1] != mono.size else mono.first
        ref = cv2.resize(colour.first, colour.size) if colour.first.shape[1::-1] != colour.size else colour.first
        warn_if_different_scenes(first, ref, f"{cfg.cameras[cfg.mono_camera].path} and {cfg.cameras[colour_name].path}")
    if abs(aspect - 1) > ASPECT_TOLERANCE:
        log.warning(
            "mono %dx%d and colour %dx%d have different aspect ratios (%.2f vs %.2f): are they the same scene "
            "and framing? The colour frame is stretched onto the mono one.",
            mw,
            mh,
            cw,
            ch,
            mw / mh,
            cw / ch,
        )


def scene_correlation(mono_luma: np.ndarray, colour_rgb: np.ndarray) -> float:
    """Luma correlation of a mono frame and a colour frame after a global (shift) alignment, at the colour size.

    A global shift, not dense flow: dense flow can warp any picture onto any other, so it would hide a mismatch.
    """
    h, w = colour_rgb.shape[:2]
    mono = cv2.resize(mono_luma, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    colour = luma(colour_rgb).astype(np.float32)
    if min(h, w) < 8 or mono.std() < 1.0 or colour.std() < 1.0:
        return 1.0  # a flat or tiny frame says nothing about the scene
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(mono.copy(), colour.copy(), window)  # it windows its inputs in place
    shifted = cv2.warpAffine(colour, np.float32([[1, 0, -dx], [0, 1, -dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    return float(np.corrcoef(mono.ravel(), shifted.ravel())[0, 1])


def warn_if_different_scenes(mono_rgb_or_luma: np.ndarray, colour_rgb: np.ndarray, what: str) -> float | None:
    """Log a warning when the first frames of the two sources do not look like one scene; returns the score."""
    mono = mono_rgb_or_luma if mono_rgb_or_luma.ndim == 2 else luma(mono_rgb_or_luma)
    if colour_rgb.shape[0] > mono.shape[0] or colour_rgb.shape[1] > mono.shape[1]:
        return None
    colour = colour_rgb
    if mono.shape[0] / colour.shape[0] != mono.shape[1] / colour.shape[1]:  # stretch as the engine will
        h = max(2, round(mono.shape[0] / (mono.shape[1] / colour.shape[1])))
        colour = cv2.resize(colour, (colour.shape[1], min(h, mono.shape[0])), interpolation=cv2.INTER_AREA)
    score = scene_correlation(mono, colour)
    if score < MIN_SCENE_CORRELATION:
        log.warning(
            "%s: the first mono and colour frames correlate only %.2f after alignment (below %.2f): the colour "
            "source may show another scene, and the colours will be wrong",
            what,
            score,
            MIN_SCENE_CORRELATION,
        )
    return score


def check_outputs(cfg: RigConfig) -> None:
    """Each output's codec exists and opens here, with a crf in range and a preset the encoder knows."""
    for i, out in enumerate(cfg.outputs):
        base = f"outputs[{i}]"
        if not CRF_RANGE[0] <= out.crf <= CRF_RANGE[1]:
            raise key_error(
                cfg, f"{base}.crf", f"must be {CRF_RANGE[0]}..{CRF_RANGE[1]} (lower is better), got {out.crf}"
            )
        if out.preset not in PRESETS:
            raise key_error(cfg, f"{base}.preset", f"unknown preset {out.preset!r}; one of {', '.join(NVENC_PRESETS)}")
        try:
            encoder = pick_encoder(out.codec)
        except ValueError as exc:
            raise key_error(cfg, f"{base}.codec", str(exc)) from None
        if not _encoder_exists(encoder):
            raise key_error(
                cfg, f"{base}.codec", f"no video encoder {encoder!r} in this FFmpeg; use libx264, libx265 or h264"
            )


def _encoder_exists(name: str) -> bool:
    import av

    try:
        return av.codec.Codec(name, "w").type == "video"
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False


def check_nir_engine(cfg: RigConfig) -> None:
    """An NIR camera needs an engine that takes NIR frames (and, with no colour camera, one with a learned prior);
    any other engine is refused here, before anything starts, with the config line."""
    if not cfg.nir_cameras:
        return
    name = cfg.engine.name
    engine = load_engine(name, **cfg.engine.options)
    nir = cfg.nir_cameras[0]
    if not getattr(engine, "accepts_nir", False):
        nir_engines = [e for e in available_engines() if e.startswith("cocolor")]
        raise key_error(
            cfg,
            "engine.name",
            f"is {name!r}, which cannot take NIR frames (camera {nir!r} has role: nir); "
            f"use an NIR engine: {', '.join(nir_engines)}",
        )
    if not cfg.color_cameras and not getattr(engine, "has_prior", False):
        raise key_error(cfg, "engine.name", f"is {name!r}, which needs a colour camera; use cocolor for NIR alone")


def check_all(cfg: RigConfig) -> None:
    """Every check of this module, in the order a user would fix them."""
    check_outputs(cfg)
    check_engine(cfg)
    check_nir_engine(cfg)
    check_sources(cfg)


register_prelaunch_check(check_all)
