"""docs/demo.png for the README: the demo rig's mono input beside streamfuse's colour output (same frame).

Run after `streamfuse run configs/demo.yaml`: python tools/make_readme_figure.py [--frame 60]
"""

from __future__ import annotations

import argparse
import itertools

import av
import cv2
import numpy as np

from streamfuse.color import gray_to_rgb
from streamfuse.config import load_config
from streamfuse.sources.synthetic import SyntheticCamera


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--video", default="out/demo.mp4")
    ap.add_argument("--frame", type=int, default=60)
    ap.add_argument("-o", "--output", default="docs/demo.png")
    args = ap.parse_args()
    cfg = load_config(args.config)
    fps = cfg.cameras[cfg.mono_camera].fps
    mono = next(itertools.islice(SyntheticCamera(cfg.synthetic, "mono", fps).frames(), args.frame, None)).image
    colour = next(itertools.islice(SyntheticCamera(cfg.synthetic, "color", fps).frames(), args.frame // 2, None))
    with av.open(args.video) as container:
        out = next(itertools.islice(container.decode(video=0), args.frame, None)).to_ndarray(format="rgb24")
    h, w = mono.shape
    ref = cv2.resize(colour.image, (w, h), interpolation=cv2.INTER_NEAREST)
    panel = np.hstack([gray_to_rgb(mono), ref, out])
    panel = cv2.resize(panel, (panel.shape[1] // 2, panel.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.output, cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.output}: mono input | colour reference (nearest-upsampled) | streamfuse output")


if __name__ == "__main__":
    main()
