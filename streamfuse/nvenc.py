"""Pick a video encoder: NVIDIA NVENC through PyAV when it really opens here, else a software encoder.

``av.codecs_available`` lists ``h264_nvenc`` whenever FFmpeg was built with it, GPU or not, so availability is
tested by opening a tiny encoder context. Results are cached per process.
"""

from __future__ import annotations

import functools
import logging
from fractions import Fraction

log = logging.getLogger(__name__)

# codec family -> encoders to try, hardware first; the last one is the software fallback
CANDIDATES: dict[str, tuple[str, ...]] = {
    "h264": ("h264_nvenc", "libx264"),
    "hevc": ("hevc_nvenc", "libx265", "libx264"),
}
ALIASES = {"avc": "h264", "x264": "h264", "h265": "hevc", "x265": "hevc"}
PROBE_SIZE = 256  # NVENC refuses very small frames, so probe at a size every encoder accepts


@functools.cache
def can_open(encoder: str) -> bool:
    """True when PyAV can open ``encoder`` for writing on this machine (driver, GPU and session available)."""
    import av

    try:
        ctx = av.CodecContext.create(encoder, "w")
        ctx.width = ctx.height = PROBE_SIZE
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.framerate = Fraction(25, 1)
        if encoder == "libx265":
            ctx.options = {"x265-params": "log-level=error"}
        ctx.open()
    except Exception as exc:  # noqa: BLE001 - PyAV raises many FFmpegError subclasses; all mean "not here"
        log.debug("encoder %s does not open here: %s", encoder, exc)
        return False
    return True


def pick_encoder(codec: str) -> str:
    """The encoder name to give PyAV for ``codec``.

    ``codec`` is a family (``h264``, ``hevc``; aliases ``h265``, ``avc``) or an explicit encoder name. For a
    family, NVENC is chosen when it opens, else the software encoder, with a log line saying so. An explicit
    NVENC name that does not open falls back the same way; any other explicit name is returned unchanged.

    Raises:
        ValueError: an unknown codec family, or no candidate encoder opens.
    """
    name = codec.lower()
    family = ALIASES.get(name, name)
    if family not in CANDIDATES:
        nvenc_family = next((f for f, cands in CANDIDATES.items() if cands[0] == name), None)
        if nvenc_family is None:
            return codec  # an explicit software encoder (libx264, mpeg4, ...): PyAV reports its own errors
        family = nvenc_family
    candidates = CANDIDATES[family]
    for encoder in candidates:
        if can_open(encoder):
            if encoder != candidates[0]:
                log.info("%s is not usable here (no NVIDIA GPU/driver); encoding with %s", candidates[0], encoder)
            return encoder
    raise ValueError(f"no {family} encoder opens on this machine (tried {', '.join(candidates)}); try codec h264")


# x264/x265 speed presets mapped onto NVENC's p1 (fastest) .. p7 (best quality)
NVENC_PRESETS = {
    "ultrafast": "p1",
    "superfast": "p2",
    "veryfast": "p3",
    "faster": "p4",
    "fast": "p4",
    "medium": "p5",
    "slow": "p6",
    "slower": "p7",
    "veryslow": "p7",
    "placebo": "p7",
}


def nvenc_options(crf: int, preset: str, live: bool = False) -> dict[str, str]:
    """PyAV stream options for an NVENC encoder that match x264's ``crf``/``preset`` settings.

    NVENC has no ``crf`` and rejects x264 preset names, so the x264 options cannot be passed through:
    constant quality (``rc=vbr`` + ``cq``) stands in for crf, and live streams get NVENC's low-latency tune.
    """
    options = {"rc": "vbr", "cq": str(int(crf)), "preset": NVENC_PRESETS.get(preset, preset)}
    if live:
        options.update(tune="ll", zerolatency="1")
    else:
        options["tune"] = "hq"
    return options
