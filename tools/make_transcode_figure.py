"""docs/transcode.png: one frame of a transcode: the mono input, the colour reference and the output, side by side.

Run after a transcode: python tools/make_transcode_figure.py --mono M.mp4 --color C.mp4 --output OUT.mp4 [--frame 400]
"""

from __future__ import annotations

import argparse
import itertools

import av
import cv2
import numpy as np

from streamfuse.color import gray_to_rgb, luma


def frame_at(path: str, index: int) -> np.ndarray:
    with av.open(path) as container:
        return next(itertools.islice(container.decode(video=0), index, None)).to_ndarray(format="rgb24")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mono", required=True)
    ap.add_argument("--color", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--frame", type=int, default=400)
    ap.add_argument("-o", "--figure", default="docs/transcode.png")
    args = ap.parse_args()
    mono = luma(frame_at(args.mono, args.frame))
    h, w = mono.shape
    ref = cv2.resize(frame_at(args.color, args.frame), (w, h), interpolation=cv2.INTER_NEAREST)
    out = frame_at(args.output, args.frame)[:h, :w]
    panel = np.hstack([gray_to_rgb(mono), ref, out])
    panel = cv2.resize(panel, (panel.shape[1] // 2, panel.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.figure, cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.figure}: mono input | colour reference (nearest-upsampled) | transcode output")


if __name__ == "__main__":
    main()
