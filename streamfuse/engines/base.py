"""The engine contract: expensive reference work once per colour frame, cheap colorization per mono frame."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from streamfuse.color import rgb_to_ycbcr
from streamfuse.errors import EngineError  # defined at the bottom layer; re-exported here


@dataclass
class ReferenceState:
    """A prepared colour reference. Engines hang their reference-only work on it and reuse it per mono frame.

    ``cache`` holds results that depend on the reference and the mono frame size (keyed by the size), so
    they are computed once per reference even though the size is only known at the first mono frame.
    """

    rgb: np.ndarray
    ycbcr: np.ndarray
    features: dict[str, Any] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rgb.shape[0], self.rgb.shape[1]


def check_mono(mono: np.ndarray) -> np.ndarray:
    """Validate a mono frame (H×W or H×W×1 uint8) and return it as a contiguous H×W array."""
    mono = np.asarray(mono)
    if mono.ndim == 3 and mono.shape[2] == 1:
        mono = mono[..., 0]
    if mono.ndim != 2 or mono.dtype != np.uint8:
        raise EngineError(
            f"mono frame must be a H×W uint8 array, got shape {mono.shape} dtype {mono.dtype}; "
            "convert it with streamfuse.color.luma() first"
        )
    if min(mono.shape) < 8:
        raise EngineError(f"mono frame {mono.shape[1]}x{mono.shape[0]} is too small (minimum 8x8)")
    return np.ascontiguousarray(mono)


def check_reference(ref_rgb: np.ndarray) -> np.ndarray:
    """Validate a colour reference (h×w×3 uint8, RGB order)."""
    ref_rgb = np.asarray(ref_rgb)
    if ref_rgb.ndim != 3 or ref_rgb.shape[2] != 3 or ref_rgb.dtype != np.uint8:
        raise EngineError(f"reference must be a h×w×3 uint8 RGB array, got shape {ref_rgb.shape} dtype {ref_rgb.dtype}")
    if min(ref_rgb.shape[:2]) < 2:
        raise EngineError(f"reference {ref_rgb.shape[1]}x{ref_rgb.shape[0]} is too small (minimum 2x2)")
    return np.ascontiguousarray(ref_rgb)


def check_scale(mono_shape: tuple[int, ...], ref_shape: tuple[int, int]) -> float:
    """Return the scale gap s = H/h; the reference must not be larger than the mono frame."""
    s_y = mono_shape[0] / ref_shape[0]
    s_x = mono_shape[1] / ref_shape[1]
    if s_y < 0.99 or s_x < 0.99:
        raise EngineError(
            f"reference {ref_shape[1]}x{ref_shape[0]} is larger than the mono frame "
            f"{mono_shape[1]}x{mono_shape[0]}; the scale gap s = H/h must be >= 1"
        )
    return s_y


class Engine(ABC):
    """Base class of every fusion engine. Arrays at this API are uint8 and RGB order."""

    name: ClassVar[str] = "engine"
    output_scale: float = 1.0
    """Output size / mono size. 1 for colorizers; an engine that also enlarges (scsnet) sets its scale, so
    callers that size buffers or frames (bench, the fuse node) know the output is round(H·s)×round(W·s)."""

    def __init__(self) -> None:
        self.reference_calls = 0  # counts prepare_reference() so tests can prove reuse

    def prepare_reference(self, ref_rgb: np.ndarray) -> ReferenceState:
        """Do the work that depends only on the colour frame, once per reference."""
        ref_rgb = check_reference(ref_rgb)
        self.reference_calls += 1
        state = ReferenceState(rgb=ref_rgb, ycbcr=rgb_to_ycbcr(ref_rgb))
        self._prepare(state)
        return state

    def colorize(self, mono: np.ndarray, ref: ReferenceState | np.ndarray) -> np.ndarray:
        """Colorize one mono frame (H×W uint8) with a prepared reference (or a raw h×w×3 RGB array)."""
        mono = check_mono(mono)
        state = ref if isinstance(ref, ReferenceState) else self.prepare_reference(ref)
        check_scale(mono.shape, state.shape)
        return self._colorize(mono, state)

    def _prepare(self, state: ReferenceState) -> None:  # noqa: B027 - optional hook
        """Engine-specific reference work; stores results on ``state``."""

    @abstractmethod
    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        """Engine-specific colorization of a validated mono frame."""

    def open_stream(self) -> EngineStream:
        """Per camera-pair temporal state: push each new colour frame, then colorize every mono frame in order.

        Frame-wise engines get this for free: ``prepare_reference`` once per pushed reference, then
        ``colorize(mono, state)`` with it. A temporal engine returns its own :class:`EngineStream` subclass.
        """
        return EngineStream(self)


class EngineStream:
    """One camera pair's stream through an engine: references as they arrive, every mono frame in order.

    The frame-wise default keeps the newest prepared reference and colorizes each mono frame with it, so its
    outputs are exactly the frame-wise API's. Temporal engines subclass it and may use the frames in between.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state: ReferenceState | None = None
        self.references = 0  # references pushed into this stream
        self.frames = 0  # mono frames colorized by this stream

    @property
    def has_reference(self) -> bool:
        return self.state is not None

    def push_reference(self, ref_rgb: np.ndarray) -> ReferenceState:
        """A new colour frame (h×w×3 uint8 RGB): prepared once, used for every mono frame until the next one."""
        return self.push_state(self.engine.prepare_reference(ref_rgb))

    def push_state(self, state: ReferenceState) -> ReferenceState:
        """An already prepared reference (e.g. one shared by several streams)."""
        self.state = state
        self.references += 1
        self._on_reference(state)
        return state

    def colorize(self, mono: np.ndarray) -> np.ndarray:
        """The next mono frame (H×W uint8) in order -> H×W×3 uint8 RGB."""
        if self.state is None:
            raise EngineError("stream.colorize() before any reference: call stream.push_reference(ref_rgb) first")
        out = self._colorize(check_mono(mono), self.state)
        self.frames += 1
        return out

    def reset(self) -> None:
        """Forget the reference and any temporal state (a scene cut, a reconnect at another size)."""
        self.state = None

    def _on_reference(self, state: ReferenceState) -> None:  # noqa: B027 - optional hook
        """Temporal engines update their memory here."""

    def _colorize(self, mono: np.ndarray, state: ReferenceState) -> np.ndarray:
        return self.engine.colorize(mono, state)
