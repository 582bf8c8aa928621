"""Pictures for docs/ENGINES.md (Pik-Fix): the real 1906 film restored and colorized, no scores (no colour truth).

    python tools/pikfix_pictures.py --out docs/images/pikfix

The film is Debian's python-nbsphinx-doc sample (public domain). The reference is retrieved per shot from a folder
of outdoor colour package stills (``LIBRARY``) with Pik-Fix's similarity features, as ``transcode --ref FOLDER`` does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from streamfuse.color import gray_to_rgb, luma
from streamfuse.data.stills import package_stills
from streamfuse.engines import load_engine
from streamfuse.engines.retrieval import ReferenceRetriever, RetrievingStream
from streamfuse.evaluation.images import _label
from streamfuse.imageio import write_rgb

# The reference library: outdoor package stills (streets, buildings, a landscape, a sports field).
LIBRARY = (
    "opencv-doc:leuvenA.jpg",
    "opencv-doc:leuvenB.jpg",
    "opencv-doc:building.jpg",
    "opencv-doc:aero1.jpg",
    "opencv-doc:home.jpg",
    "opencv-doc:messi5.jpg",
)
FILM = Path("/usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv")


def film_frames(limit: int = 400) -> list[np.ndarray]:
    """Grey frames of the 1906 film, cropped to multiples of 16 and enlarged 2× (it is 218×160)."""
    out = []
    with av.open(str(FILM)) as box:
        for i, frame in enumerate(box.decode(video=0)):
            if i >= limit:
                break
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[0] // 16 * 16, rgb.shape[1] // 16 * 16
            out.append(cv2.resize(luma(rgb[:h, :w]), (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/images/pikfix")
    ap.add_argument("--frames", default="120,250", help="film frames to show")
    args = ap.parse_args()
    frames = film_frames()
    library = [(n, s) for n, s in package_stills() if n in LIBRARY]
    for name in ("pikfix", "pikfix-paper"):
        stream = RetrievingStream(load_engine(name, threads=1), library, ReferenceRetriever())
        outs = [stream.colorize(f) for f in frames]
        rows = []
        for k in (int(v) for v in args.frames.split(",")):
            ref_name = [n for t, n in stream.chosen if t <= k][-1]
            ref = dict(library)[ref_name]
            h, w = frames[k].shape
            ref_small = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
            rows.append(
                np.hstack(
                    [
                        _label(gray_to_rgb(frames[k]), f"1906 film, frame {k}"),
                        _label(outs[k], name),
                        _label(ref_small, f"retrieved: {ref_name}"),
                    ]
                )
            )
        write_rgb(Path(args.out) / f"calais1906_{name}.png", np.vstack(rows))
        print(name, "shots and references:", stream.chosen)


if __name__ == "__main__":
    main()
