"""What every source yields: captured frames with integer-ns timestamps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class CapturedFrame:
    """One frame from a camera. ``truth`` is the true colour frame when the source knows it (synthetic rig)."""

    ts_ns: int
    image: np.ndarray
    truth: np.ndarray | None = None


class Source(ABC):
    """A camera: iterate to get frames in capture order; ``live`` sources are paced by the device itself."""

    live: bool = False

    @abstractmethod
    def frames(self) -> Iterator[CapturedFrame]:
        """Frames in capture order; the iterator ends at the end of a file."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""

    def health(self) -> dict[str, int]:
        """Counts of what the source skipped so far (e.g. ``corrupt_frames``), for the capture node's summary."""
        return {}
