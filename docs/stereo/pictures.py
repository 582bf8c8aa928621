"""Side-by-side pictures for docs/STEREO.md: python docs/stereo/pictures.py (writes docs/stereo/*.png).

1. aloe x1 Setup2 (the public stereo protocol's pair): mono | guided | duallens | truth, a crop.
2. a diagonal-baseline pair (a camera array's neighbours), made by shifting the held-out still skimage:coffee by
   (12, 9) px: duallens searching rows only (geometry: rectified) | duallens with auto geometry | truth.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.engines import load_engine
from streamfuse.evaluation.stereo import stereo_cases

OUT = Path(__file__).resolve().parent
DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def psnr_cbcr(out: np.ndarray, truth: np.ndarray) -> float:
    d = (rgb_to_ycbcr(out).astype(np.float64) - rgb_to_ycbcr(truth).astype(np.float64))[8:-8, 8:-8, 1:]
    return float(10 * np.log10(255.0**2 / max(np.mean(d**2), 1e-9)))


def label(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(img, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def save(name: str, panels: list[np.ndarray]) -> None:
    row = np.hstack(panels)
    cv2.imwrite(str(OUT / name), cv2.cvtColor(row, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print("wrote", OUT / name)


def aloe() -> None:
    case = next(c for c in stereo_cases(DATA, (1,)) if c.dataset == "aloe" and c.target == "Setup2")
    outs = {n: load_engine(n, **({"threads": 1} if n != "guided" else {})) for n in ("guided", "duallens")}
    res = {n: e.colorize(case.mono, case.ref) for n, e in outs.items()}
    y0, x0, s = 380, 300, 320  # a crop with leaves in front of the background: occlusions
    crop = lambda a: a[y0 : y0 + s, x0 : x0 + s]  # noqa: E731
    mono = np.dstack([case.mono] * 3)
    save(
        "aloe_x1_setup2.png",
        [label(crop(mono), "mono")]
        + [label(crop(res[n]), f"{n} {psnr_cbcr(res[n], case.truth):.2f} dB") for n in res]
        + [label(crop(case.truth), "truth")],
    )


def diagonal() -> None:
    from skimage import data

    still = data.coffee()
    h, w, dx, dy = 256, 320, 12, 9
    left = np.ascontiguousarray(still[60 : 60 + h, 100 : 100 + w])
    right = np.ascontiguousarray(still[60 - dy : 60 - dy + h, 100 - dx : 100 - dx + w])
    right = cv2.resize(right, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    panels = []
    for geometry in ("rectified", "auto"):
        out = load_engine("duallens", threads=1, geometry=geometry).colorize(luma(left), right)
        panels.append(label(out, f"{geometry} {psnr_cbcr(out, left):.2f} dB"))
        print(geometry, round(psnr_cbcr(out, left), 2))
    save("diagonal_baseline.png", [*panels, label(left, "truth")])


if __name__ == "__main__":
    which = sys.argv[1:] or ["aloe", "diagonal"]
    for name in which:
        globals()[name]()
