"""One evaluation case: a mono frame, a colour reference, the true colour frame, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    """Inputs and truth of one scored colorization; the metadata fields become the JSON record keys."""

    protocol: str  # "video" or "stereo"
    dataset: str  # e.g. "vtest", "aloe"
    case: str  # clip or pair id within the dataset
    scale: float  # scale gap s of the reference
    target: str  # "near"/"far" (video) or "Setup1"/"Setup2" (stereo)
    mono: np.ndarray  # H×W uint8 luma given to the engine
    ref: np.ndarray  # h×w×3 uint8 RGB reference given to the engine
    truth: np.ndarray  # H×W×3 uint8 RGB ground truth
