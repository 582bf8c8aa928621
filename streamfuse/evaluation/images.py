"""Side-by-side PNGs (mono | reference | output | truth | chroma error heat-map), because people look first."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb, rgb_to_ycbcr
from streamfuse.evaluation.case import Case
from streamfuse.imageio import write_rgb

CASES_PER_DATASET = 2
ERROR_FULL_SCALE = 32.0  # chroma error (0..255 units) shown as the hottest colour


def error_heatmap(out_rgb: np.ndarray, truth_rgb: np.ndarray) -> np.ndarray:
    """RGB heat-map of the per-pixel chroma error magnitude √(ΔCb² + ΔCr²)."""
    a = rgb_to_ycbcr(out_rgb.astype(np.float32))[..., 1:]
    b = rgb_to_ycbcr(truth_rgb.astype(np.float32))[..., 1:]
    err = np.sqrt(np.sum((a - b) ** 2, axis=2))
    level = np.clip(err * (255.0 / ERROR_FULL_SCALE), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img).copy()
    scale = max(0.4, img.shape[1] / 900)
    thick = max(1, round(scale * 2))
    cv2.putText(img, text, (6, int(22 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2)
    cv2.putText(img, text, (6, int(22 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick)
    return img


def side_by_side(case: Case, out_rgb: np.ndarray, engine: str) -> np.ndarray:
    """One labelled strip: mono, reference (nearest-upsampled to the mono size), output, truth, error map."""
    h, w = case.mono.shape
    ref_up = cv2.resize(case.ref, (w, h), interpolation=cv2.INTER_NEAREST)
    panels = [
        _label(gray_to_rgb(case.mono), "mono"),
        _label(ref_up, f"reference x{case.scale:g}"),
        _label(out_rgb, engine),
        _label(case.truth, "truth"),
        _label(error_heatmap(out_rgb, case.truth), f"CbCr error (0-{ERROR_FULL_SCALE:g})"),
    ]
    return np.hstack(panels)


class ImageSaver:
    """Writes side-by-sides for the first few cases of each dataset (every scale, target and engine)."""

    def __init__(self, folder: str | Path, cases_per_dataset: int = CASES_PER_DATASET) -> None:
        self.folder = Path(folder)
        self.cases_per_dataset = cases_per_dataset
        self._chosen: dict[str, list[str]] = defaultdict(list)
        self.written: list[Path] = []

    def wants(self, case: Case) -> bool:
        chosen = self._chosen[case.dataset]
        if case.case in chosen:
            return True
        if len(chosen) < self.cases_per_dataset:
            chosen.append(case.case)
            return True
        return False

    def __call__(self, case: Case, record: dict, out_rgb: np.ndarray) -> None:
        if not self.wants(case):
            return
        name = f"{case.dataset}_{case.case}_x{case.scale:g}_{case.target}_{record['engine']}.png"
        path = self.folder / name
        write_rgb(path, side_by_side(case, out_rgb, f"{record['engine']} {record['psnr_cbcr']:.2f} dB"))
        self.written.append(path)
