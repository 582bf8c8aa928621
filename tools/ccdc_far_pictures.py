"""Side-by-side pictures of the hardest far frames of the stream protocol: truth | guided | ccdc | both error maps.

Usage: python tools/ccdc_far_pictures.py STREAM.json OUT_DIR [N]
STREAM.json is ``streamfuse eval --protocol stream --engines guided,...,ccdc --json STREAM.json``; per dataset, the
N clips (default 1) with the lowest ``guided`` far chroma PSNR at x4 K6 are re-run and their last far frame drawn.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from streamfuse.engines import load_engine
from streamfuse.evaluation.data import data_dir
from streamfuse.evaluation.images import error_heatmap
from streamfuse.evaluation.stream import far_frames, run_stream, stream_clips
from streamfuse.imageio import write_rgb
from streamfuse.metrics import psnr_cbcr


def _label(img: np.ndarray, text: str) -> np.ndarray:
    img = np.ascontiguousarray(img).copy()
    cv2.putText(img, text, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4)
    cv2.putText(img, text, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return img


def main(stream_json: str, out_dir: str, n: int = 1, scale: int = 4, period: int = 6) -> None:
    records = json.loads(Path(stream_json).read_text())["records"]
    rows = [r for r in records if r["engine"] == "guided" and r["scale"] == scale and r["target"] == f"K{period}"]
    datasets = sorted({r["dataset"] for r in rows})
    hardest = [
        r
        for d in datasets
        for r in sorted((r for r in rows if r["dataset"] == d), key=lambda r: r["psnr_cbcr_far"])[:n]
    ]
    engines = {"guided": load_engine("guided"), "ccdc": load_engine("ccdc", threads=1)}
    out = Path(out_dir)
    for r in hardest:
        video = data_dir() / f"{r['dataset']}.avi"
        clip = next(c for c in stream_clips(video) if c.case == r["case"])
        t = far_frames(period, len(clip.frames))[-1]
        truth = clip.frames[t]
        panels = [_label(truth, f"truth {r['dataset']} {r['case']} t={t}")]
        errs = []
        for name, eng in engines.items():
            frame = run_stream(eng, clip.frames, scale, period)[0][t]
            panels.append(_label(frame, f"{name} {psnr_cbcr(frame, truth):.2f} dB"))
            errs.append(_label(error_heatmap(frame, truth), f"{name} CbCr error (0-32)"))
        strip = np.hstack(panels + errs)
        half = cv2.resize(strip, (strip.shape[1] // 2, strip.shape[0] // 2), interpolation=cv2.INTER_AREA)
        path = out / f"ccdc-far-{r['dataset']}-{r['case']}-x{scale}K{period}.png"
        write_rgb(path, half)
        print(path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
