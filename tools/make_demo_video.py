"""Generate streamfuse/assets/demo.mp4: a short colour clip for the demo rig, made from public-domain/CC0 stills.

Sources (scikit-image's bundled data): ``rocket`` (SpaceX, CC0) as the panning background, ``coffee`` (Rachel
Michetti, CC0) and ``chelsea`` (Stefan van der Walt, CC0) as foreground objects that move on their own and occlude.
Run: python tools/make_demo_video.py [--frames 150] [--size 768x576] [-o streamfuse/assets/demo.mp4]
"""

from __future__ import annotations

import argparse
from fractions import Fraction

import av
import cv2
import numpy as np
from skimage import data

from streamfuse.size import parse_size


def sprite(img: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A resized sprite and a soft elliptical alpha mask."""
    h = round(img.shape[0] * width / img.shape[1])
    rgb = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    mask = np.zeros((h, width), np.float32)
    cv2.ellipse(mask, (width // 2, h // 2), (width // 2 - 4, h // 2 - 4), 0, 0, 360, 1.0, -1)
    return rgb, cv2.GaussianBlur(mask, (0, 0), 3)[..., None]


def render(frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    w, h = size
    bg = data.rocket()
    scale = max(w * 1.6 / bg.shape[1], h * 1.3 / bg.shape[0])
    bg = cv2.resize(bg, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).astype(np.float32)
    cup, cup_a = sprite(data.coffee(), w // 3)
    cat, cat_a = sprite(data.chelsea(), w // 3)
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        x0 = int((bg.shape[1] - w) * (0.5 - 0.5 * np.cos(np.pi * t)))  # smooth camera pan
        y0 = int((bg.shape[0] - h) * (0.3 + 0.2 * np.sin(2 * np.pi * t)))
        frame = bg[y0 : y0 + h, x0 : x0 + w].copy()
        for rgb, alpha, (px, py) in (
            (cup, cup_a, (int(-cup.shape[1] * 0.3 + (w + cup.shape[1] * 0.3) * t), int(h * 0.45))),
            (cat, cat_a, (int(w * 0.85 - w * 0.9 * t), int(h * 0.15 + h * 0.25 * np.sin(3 * t)))),
        ):
            sh, sw = rgb.shape[:2]
            xa, ya, xb, yb = max(px, 0), max(py, 0), min(px + sw, w), min(py + sh, h)
            if xa >= xb or ya >= yb:
                continue
            s = (slice(ya - py, yb - py), slice(xa - px, xb - px))
            frame[ya:yb, xa:xb] = alpha[s] * rgb[s] + (1 - alpha[s]) * frame[ya:yb, xa:xb]
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", default="768x576")
    ap.add_argument("-o", "--output", default="streamfuse/assets/demo.mp4")
    args = ap.parse_args()
    size = parse_size(args.size)
    with av.open(args.output, mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(30))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "20", "preset": "slow"}
        for rgb in render(args.frames, size):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
