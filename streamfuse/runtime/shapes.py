"""TensorRT shape profiles, which need no GPU: frame-size profiles and the per-input shapes ORT's TensorRT EP takes.

A profile is stated in frame sizes (``--min 320x240 --opt 1280x720 --max 1920x1088``). Each graph input with
dynamic spatial dims follows the frame size times a per-input scale range (1 for full-resolution inputs; for
example 1/8..1/4 for a reference branch that sees the colour frame at reference resolution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from streamfuse.size import parse_size

Size = tuple[int, int]  # (width, height)
Dims = tuple[int, ...]  # a tensor shape; -1 marks a dynamic dim


def _fmt(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


@dataclass(frozen=True)
class ShapeProfile:
    """An optimization profile in frame sizes: any frame from ``min`` to ``max`` runs, tuned for ``opt``."""

    min: Size
    opt: Size
    max: Size

    def __post_init__(self) -> None:
        for axis, label in ((0, "width"), (1, "height")):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise ValueError(
                    f"profile {self} has {label}s out of order; need min <= opt <= max in both width and height"
                )

    @classmethod
    def parse(cls, text: str) -> ShapeProfile:
        """Parse ``'320x240:1280x720:1920x1088'`` (min:opt:max)."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"profile must look like 320x240:1280x720:1920x1088 (min:opt:max), got {text!r}")
        return cls(*(parse_size(p, "1280x720") for p in parts))

    def contains(self, width: int, height: int) -> bool:
        return self.min[0] <= width <= self.max[0] and self.min[1] <= height <= self.max[1]

    def __str__(self) -> str:
        return f"{_fmt(self.min)}:{_fmt(self.opt)}:{_fmt(self.max)}"


DEFAULT_PROFILE = ShapeProfile(min=(320, 240), opt=(1280, 720), max=(1920, 1088))


def _scaled(size: Size, ratio: float, rounding) -> Size:
    return max(1, int(rounding(size[0] * ratio))), max(1, int(rounding(size[1] * ratio)))


def input_shapes(
    dims: Dims, profile: ShapeProfile, scale: float | tuple[float, float] = 1.0
) -> tuple[Dims, Dims, Dims]:
    """The (min, opt, max) shapes of one graph input for a frame-size profile.

    ``dims`` is the input shape as the ONNX parser reports it (``-1`` = dynamic). A dynamic batch is fixed to 1,
    dynamic last two dims (N×C×H×W or H×W layout) follow the frame size times ``scale`` (a ratio, or a
    (low, high) ratio range for inputs whose size varies with the rig's scale gap). Any other dynamic dim is an
    error, because a frame size cannot fix it.
    """
    lo, hi = (scale, scale) if isinstance(scale, (int, float)) else scale
    if not 0 < lo <= hi:
        raise ValueError(f"input scale must be 0 < low <= high, got {scale!r}")
    sizes = (
        _scaled(profile.min, lo, math.floor),
        _scaled(profile.opt, math.sqrt(lo * hi), round),
        _scaled(profile.max, hi, math.ceil),
    )
    rank = len(dims)
    out: list[list[int]] = [list(dims), list(dims), list(dims)]
    for axis, d in enumerate(dims):
        if d != -1:
            continue
        if rank >= 2 and axis == rank - 2:
            values = [s[1] for s in sizes]
        elif rank >= 2 and axis == rank - 1:
            values = [s[0] for s in sizes]
        elif axis == 0 and rank >= 3:
            values = [1, 1, 1]
        else:
            raise ValueError(
                f"input shape {dims} has a dynamic dim {axis} that a frame size cannot fix; "
                "export the graph with static channels"
            )
        for shape, v in zip(out, values, strict=True):
            shape[axis] = v
    return tuple(out[0]), tuple(out[1]), tuple(out[2])


def _dims_text(shape: Dims) -> str:
    return "x".join(str(d) for d in shape)


def ort_profile_shapes(
    inputs: Mapping[str, Dims],
    profile: ShapeProfile,
    scales: Mapping[str, float | tuple[float, float]] | None = None,
) -> dict[str, str]:
    """The ``trt_profile_min/opt/max_shapes`` options of ORT's TensorRT EP for graph ``inputs`` (name -> dims).

    Inputs without a dynamic dim are left out (TensorRT needs no profile for them). ``scales`` gives the size ratio
    to the frame of inputs that are not at frame resolution (see :func:`input_shapes`).
    """
    scales = scales or {}
    per_input = {
        name: input_shapes(dims, profile, scales.get(name, 1.0)) for name, dims in inputs.items() if -1 in dims
    }
    return (
        {
            f"trt_profile_{which}_shapes": ",".join(f"{n}:{_dims_text(b[i])}" for n, b in per_input.items())
            for i, which in enumerate(("min", "opt", "max"))
        }
        if per_input
        else {}
    )
