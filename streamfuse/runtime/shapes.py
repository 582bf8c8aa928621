"""TensorRT shape logic that needs no GPU: frame-size profiles, per-input tensor shapes, buffer plans.

A profile is stated in frame sizes (``--min 320x240 --opt 1280x720 --max 1920x1088``). Each graph input with
dynamic spatial dims follows the frame size times a per-input scale range (1 for full-resolution inputs; for
example 1/8..1/4 for a reference branch that sees the colour frame at reference resolution).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamfuse.runtime.base import BackendUnavailable
from streamfuse.size import parse_size

Size = tuple[int, int]  # (width, height)
Dims = tuple[int, ...]  # a tensor shape; -1 marks a dynamic dim
ALIGNMENT = 256  # bytes; CUDA allocations and TensorRT I/O tensors want 256-byte aligned addresses


class ProfileError(BackendUnavailable):
    """A frame or tensor shape outside every optimization profile of a TensorRT plan."""


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


def select_profile(profiles: Sequence[ShapeProfile], width: int, height: int) -> int:
    """Index of the profile for a ``width``×``height`` frame: the one containing it whose ``opt`` is nearest.

    Raises:
        ProfileError: no profile covers the frame; the message says how to rebuild the plan.
    """
    fits = [i for i, p in enumerate(profiles) if p.contains(width, height)]
    if not fits:
        spans = ", ".join(f"{_fmt(p.min)}..{_fmt(p.max)}" for p in profiles) or "none"
        raise ProfileError(
            f"frame {width}x{height} is outside the TensorRT plan's shape profile(s) ({spans}); rebuild it with "
            f"`streamfuse build-engine ... --min/--max` covering {width}x{height}, or use backend=onnxruntime instead"
        )
    return min(fits, key=lambda i: abs(profiles[i].opt[0] * profiles[i].opt[1] - width * height))


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


def check_shape(name: str, shape: Dims, bounds: tuple[Dims, Dims, Dims]) -> None:
    """Raise ProfileError when a concrete input shape is outside its (min, opt, max) bounds."""
    lo, _, hi = bounds
    if len(shape) != len(lo) or any(not a <= s <= b for s, a, b in zip(shape, lo, hi, strict=True)):
        raise ProfileError(
            f"input {name!r} has shape {tuple(shape)}, outside the TensorRT profile {tuple(lo)}..{tuple(hi)}; "
            "rebuild the plan with `streamfuse build-engine` for this size, or use backend=onnxruntime instead"
        )


@dataclass(frozen=True)
class TensorSlot:
    """Where one tensor lives inside a buffer arena."""

    name: str
    shape: Dims
    dtype: np.dtype
    offset: int
    nbytes: int


@dataclass(frozen=True)
class BufferPlan:
    """Byte layout of a set of tensors in one arena (one allocation), each tensor 256-byte aligned."""

    tensors: dict[str, TensorSlot]
    total: int

    def view(self, arena: np.ndarray, name: str) -> np.ndarray:
        """The tensor ``name`` as a typed, shaped view into a host ``arena`` (uint8, at least ``total`` bytes)."""
        t = self.tensors[name]
        return arena[t.offset : t.offset + t.nbytes].view(t.dtype).reshape(t.shape)


def _align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


def plan_buffers(specs: Mapping[str, tuple[Dims, np.dtype]], alignment: int = ALIGNMENT) -> BufferPlan:
    """Lay out tensors of concrete shapes back to back in one arena, in the given order."""
    tensors: dict[str, TensorSlot] = {}
    offset = 0
    for name, (shape, dtype) in specs.items():
        if any(d < 0 for d in shape):
            raise ValueError(f"tensor {name!r} has an unresolved dynamic shape {tuple(shape)}")
        dt = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        tensors[name] = TensorSlot(name, tuple(int(d) for d in shape), dt, offset, nbytes)
        offset = _align(offset + nbytes, alignment)
    return BufferPlan(tensors, offset)


def grown_capacity(capacity: int, needed: int) -> int:
    """New arena capacity for ``needed`` bytes: unchanged when it fits, else grown by 1.5× so size changes settle."""
    if needed <= capacity:
        return capacity
    return _align(max(needed, capacity + capacity // 2))


def frame_profile(bounds: tuple[Dims, Dims, Dims]) -> ShapeProfile:
    """The frame-size profile implied by the (min, opt, max) shapes of a full-resolution input (last dims H, W)."""
    lo, opt, hi = bounds
    return ShapeProfile(min=(lo[-1], lo[-2]), opt=(opt[-1], opt[-2]), max=(hi[-1], hi[-2]))
