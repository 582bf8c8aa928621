"""Synthetic rectified stereo for dual-lens training, rendered from depth layers over package stills.

Each pair is a background still on a planar disparity field plus 1–4 textured foreground objects (cut from
other stills) at larger disparities, so the colour (right) view has occlusions and disocclusions with known
geometry. ``camera_pair`` then degrades it like the dual-lens rig: an exposure/colour difference, an optional
scale gap (x1/x2/x4) and the paper's noise on the colour camera (Setup1 0.03·√κ, Setup2 0.07·√κ, or in
between), 0.01·√κ on the mono camera. The stills never include a stereo pair a package ships
(``streamfuse.data.benchmark``): aloe, rubberwhale and stereo_motorcycle are the benchmark's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import luma
from streamfuse.data.degrade import downsample, sensor_noise
from streamfuse.data.manifest import DatasetManifest
from streamfuse.data.stills import package_stills

VALIDATION_STILLS = ("skimage:coffee", "sklearn:flower.jpg", "opencv-doc:fruits.jpg", "opencv-doc:baboon.jpg")
MARGIN = 12  # texture columns kept left of the view, for negative disparities
SMALL_SHARE = 0.3  # share of small-baseline, slightly misrectified training pairs
TILT_DEG = 4.0  # largest residual baseline angle of a tilted pair (what a coarse direction estimate leaves)


@dataclass
class StereoSample:
    """One training pair as the rig delivers it, with its clean views."""

    left: np.ndarray  # H×W×3 uint8, the clean left view (the truth)
    right: np.ndarray  # H×W×3 uint8, the clean right view
    mono: np.ndarray  # H×W uint8, noisy left luma
    ref: np.ndarray  # h×w×3 uint8, degraded right colour reference
    meta: dict


def _texture(still: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A random w×h float32 crop of a still at a random zoom, randomly flipped."""
    ih, iw = still.shape[:2]
    zoom = max(w / iw, h / ih) * rng.uniform(1.0, 2.0) if rng.random() < 0.5 else max(w / iw, h / ih, 0.5)
    zoom = max(zoom, w / iw, h / ih)
    img = cv2.resize(
        still,
        (int(np.ceil(iw * zoom)) + 1, int(np.ceil(ih * zoom)) + 1),
        interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC,
    )
    y = rng.integers(0, img.shape[0] - h + 1)
    x = rng.integers(0, img.shape[1] - w + 1)
    crop = img[y : y + h, x : x + w].astype(np.float32)
    return crop[:, ::-1].copy() if rng.random() < 0.5 else crop


def _plane(w: int, h: int, base: float, slope: float, rng: np.random.Generator) -> np.ndarray:
    """A planar disparity field base + gx·x/w + gy·y/h."""
    gx, gy = rng.uniform(-slope, slope, 2)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32) / w, np.arange(h, dtype=np.float32) / h)
    return (base + gx * (xs - 0.5) + gy * (ys - 0.5)).astype(np.float32)


def _polygon_mask(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged random star-shaped polygon covering 5–35 % of the frame."""
    cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
    r = rng.uniform(0.12, 0.35) * min(w, h) * rng.uniform(1.0, 1.8)
    k = rng.integers(5, 11)
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = r * rng.uniform(0.5, 1.0, k)
    pts = np.stack([cx + rad * np.cos(ang) * rng.uniform(0.7, 1.5), cy + rad * np.sin(ang)], 1).astype(np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [pts], 1.0)
    return cv2.GaussianBlur(mask, (0, 0), 0.6)


def render_stereo(
    stills: list[np.ndarray],
    rng: np.random.Generator,
    w: int,
    h: int,
    max_disp: float,
    wobble: float = 0.0,
    tilt_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A rectified (left, right) RGB uint8 pair from depth layers; right pixel x' shows left pixel x' + d.

    ``wobble`` > 0 also moves each layer vertically by up to that many pixels in the right view: an imperfectly
    rectified rig, or a small-baseline pair with a little independent motion. ``tilt_deg`` turns the baseline
    that many degrees off the rows (the right view also sees each layer d·tan(tilt) px lower): the residue an
    estimated baseline direction leaves on an uncalibrated or camera-array pair.
    """
    tilt = float(np.tan(np.radians(tilt_deg)))
    tw = w + int(max_disp) + 2 * MARGIN
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dy = rng.uniform(-0.8, 0.8) if rng.random() < 0.3 else 0.0  # residual vertical calibration error
    far = rng.uniform(-4, 0.4 * max_disp)
    layers = [(_texture(stills[rng.integers(len(stills))], tw, h, rng), None, _plane(w, h, far, 0.3 * max_disp, rng))]
    shifts = [rng.uniform(-wobble, wobble) for _ in range(5)]
    for _ in range(rng.integers(1, 5)):
        lo = max(far, 0) + 2
        base = rng.uniform(lo, max(lo + 0.5, max_disp * 0.95))
        layers.append(
            (
                _texture(stills[rng.integers(len(stills))], tw, h, rng),
                _polygon_mask(tw, h, rng),
                _plane(w, h, base, 0.1 * max_disp, rng),
            )
        )
    layers[1:] = sorted(layers[1:], key=lambda t: float(t[2].mean()))
    left = np.zeros((h, w, 3), np.float32)
    right = np.zeros((h, w, 3), np.float32)
    for (tex, mask, disp), wob in zip(layers, shifts, strict=False):
        mx_l, mx_r = xs + MARGIN, np.clip(xs + MARGIN + disp, 0, tw - 1)
        my_r = np.clip(ys + dy + wob + tilt * disp, 0, h - 1)
        for view, mx, my in ((left, mx_l, ys), (right, mx_r, my_r)):
            col = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
            if mask is None:
                view[:] = col
            else:
                a = cv2.remap(mask, mx, my, cv2.INTER_LINEAR)[..., None]
                view[:] = view * (1 - a) + col * a
    return np.clip(np.rint(left), 0, 255).astype(np.uint8), np.clip(np.rint(right), 0, 255).astype(np.uint8)


def camera_pair(left: np.ndarray, right: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Mono luma of the left view and the degraded colour reference of the right view (the protocol's cameras)."""
    gain = rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3)
    gamma = rng.uniform(0.92, 1.08)
    ref = np.clip(255.0 * (np.clip(right * gain / 255.0, 0, 1) ** gamma), 0, 255).astype(np.uint8)
    scale = float(rng.choice([1, 1, 2, 4]))
    a = float(rng.choice([0.03, 0.07, rng.uniform(0.01, 0.08)]))
    ref = (
        sensor_noise(downsample(ref, scale), a, rng)
        if rng.random() < 0.5
        else downsample(sensor_noise(ref, a, rng), scale)
    )
    mono = sensor_noise(luma(left), 0.01, rng)
    return mono, ref, {"scale": scale, "noise": a}


def sample_pair(
    stills: list[np.ndarray],
    rng: np.random.Generator,
    w: int,
    h: int,
    max_disp: float,
    small_share: float = SMALL_SHARE,
    tilt_share: float = 0.0,
) -> StereoSample:
    """One training pair, small-baseline with probability ``small_share``, else wide-baseline up to ``max_disp``;
    with probability ``tilt_share`` the baseline is up to ``TILT_DEG`` degrees off the rows.

    Small-baseline pairs (disparity <= 8 px, per-layer vertical wobble up to 2 px) are where a classical
    candidate is good, so a network learns when to trust it.
    """
    small = rng.random() < small_share
    tilt = float(rng.uniform(-TILT_DEG, TILT_DEG)) if tilt_share > 0 and rng.random() < tilt_share else 0.0
    disp = rng.uniform(3, 8) if small else max_disp
    left, right = render_stereo(stills, rng, w, h, disp, 2.0 if small else 0.0, tilt)
    mono, ref, meta = camera_pair(left, right, rng)
    meta = {**meta, "small_baseline": bool(small), "tilt_deg": round(tilt, 3)}
    return StereoSample(left=left, right=right, mono=mono, ref=ref, meta=meta)


def stereo_rig_video(
    stills: list[np.ndarray], rng: np.random.Generator, w: int, h: int, frames: int, max_disp: float, pan: int = 2
) -> list[StereoSample]:
    """A synthetic stereo rig video: one depth-layer scene, the rig panning ``pan`` px per frame, fresh sensor
    noise every frame and one colour/exposure difference throughout (the rig's cameras do not change)."""
    left, right = render_stereo(stills, rng, w + pan * frames, h, max_disp)
    gain = rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3)
    out = []
    for t in range(frames):
        lv, rv = (np.ascontiguousarray(v[:, t * pan : t * pan + w]) for v in (left, right))
        ref = sensor_noise(np.clip(rv * gain, 0, 255).astype(np.uint8), 0.03, rng)
        mono = sensor_noise(luma(lv), 0.01, rng)
        out.append(StereoSample(left=lv, right=rv, mono=mono, ref=ref, meta={"frame": t, "pan": pan}))
    return out


def orient_pair(a: np.ndarray, b: np.ndarray, min_shift: float = 2.0, max_shift: float = 40.0) -> tuple | None:
    """Two frames of a translating camera as a rectified-like (left, right) pair, or None when they do not fit.

    The global shift (``cv2.phaseCorrelate`` on the lumas) must be ``min_shift``..``max_shift`` px. The pair is
    transposed when the motion is mostly vertical and mirrored when it points right, so the second frame sees
    the scene shifted left, as the right camera of a rig does; the rest of the motion (parallax, other objects,
    the orthogonal component) stays, which is what real stereo looks like.
    """
    ya, yb = (luma(f).astype(np.float32) for f in (a, b))
    (dx, dy), response = cv2.phaseCorrelate(ya, yb)
    if not (min_shift <= float(np.hypot(dx, dy)) <= max_shift) or response < 0.05:
        return None
    if abs(dy) > abs(dx):
        a, b, dx = a.transpose(1, 0, 2), b.transpose(1, 0, 2), dy
    if dx > 0:
        a, b = a[:, ::-1], b[:, ::-1]
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def video_pairs(
    data_dir: str | Path, per_file: int = 6, gaps: tuple[int, ...] = (1, 3, 6)
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """(left, right) pairs cut from a real-clips dataset's training clips where the camera translates, and the
    source files used. At most ``per_file`` clips per video are read; frame t is paired with t + gap.
    """
    from streamfuse.data.video import check_training_video, load_manifest, read_clips

    manifest = load_manifest(Path(data_dir), "make it with `streamfuse clips --out data/real-clips`")
    by_file: dict[str, list[dict]] = {}
    for item in manifest.sequences:
        if item.get("split") == "train":
            by_file.setdefault(item["file"], []).append(item)
    pairs, sources = [], []
    for file, items in sorted(by_file.items()):
        check_training_video(file)
        picks = [items[i] for i in np.linspace(0, len(items) - 1, min(per_file, len(items))).round().astype(int)]
        found = 0
        for frames in read_clips(file, [i["start"] for i in picks], picks[0]["frames"]).values():
            for gap in gaps:
                if gap < len(frames):
                    pair = orient_pair(frames[0], frames[gap])
                    if pair is not None:
                        pairs.append(pair)
                        found += 1
        if found:
            sources.append(file)
    return pairs, sources


def sample_video_pair(pairs: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, w: int, h: int):
    """A w×h crop (same place in both frames) of a random video pair, degraded like the rig's cameras."""
    a, b = pairs[rng.integers(len(pairs))]
    ih, iw = a.shape[:2]
    if iw < w or ih < h:
        z = max(w / iw, h / ih)
        size = (int(np.ceil(iw * z)), int(np.ceil(ih * z)))
        a, b = (cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in (a, b))
        ih, iw = a.shape[:2]
    y, x = rng.integers(0, ih - h + 1), rng.integers(0, iw - w + 1)
    left, right = a[y : y + h, x : x + w].copy(), b[y : y + h, x : x + w].copy()
    mono, ref, meta = camera_pair(left, right, rng)
    return StereoSample(
        left=left, right=right, mono=mono, ref=ref, meta={**meta, "small_baseline": False, "video": True}
    )


def stereo_stills(
    validation: tuple[str, ...] = VALIDATION_STILLS,
) -> tuple[list[np.ndarray], list[np.ndarray], DatasetManifest]:
    """(train stills, validation stills, the manifest of this on-the-fly dataset) from the package stills."""
    named = package_stills()
    train = [s for n, s in named if n not in validation]
    val = [s for n, s in named if n in validation]
    manifest = DatasetManifest(
        kind="stereo",
        sources=[n for n, _ in named],
        sequences=[{"source": n, "split": "val" if n in validation else "train"} for n, _ in named],
        options={"renderer": "streamfuse.data.stereo.render_stereo", "small_share": SMALL_SHARE, "margin": MARGIN},
        counts={"train_stills": len(train), "val_stills": len(val)},
    )
    return train, val, manifest
