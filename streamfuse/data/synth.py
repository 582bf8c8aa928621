"""Synthetic training video: short sequences rendered from stills, x264-encoded.

Real rigs deliver compressed 4:2:0 video with camera motion, independently moving and occluding objects and
motion blur, so the sequences here have all of that: a moving camera over a background still (with parallax
between depth layers and a mild elastic warp), textured foreground objects cut from other stills that move
on their own, sub-frame motion blur, and a round trip through libx264 (yuv420p) with PyAV. A dataset folder
holds one ``seq_NNNNN.mp4`` per sequence and a ``manifest.json`` (``streamfuse.data.manifest``); pairs
(low-res colour reference at frame 0, mono luma of frame k, true colour frame k) are cut from the decoded
sequences by ``sequence_pairs``.

Stills come from ``streamfuse.data.stills``, which never returns benchmark data (``streamfuse.data.benchmark``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import luma
from streamfuse.data.benchmark import BENCHMARK_EXCLUDE, DataError, check_not_benchmark, is_benchmark
from streamfuse.data.degrade import downsample, encode_x264, sensor_noise
from streamfuse.data.manifest import DatasetManifest, load_manifest, write_manifest
from streamfuse.data.stills import file_sources, package_stills
from streamfuse.data.video import decode_video

# Older names, kept so `from streamfuse.data import synth; synth.X` reads as before the data layer split.
SynthError = DataError
Manifest = DatasetManifest
__all__ = [
    "BENCHMARK_EXCLUDE",
    "Manifest",
    "Pair",
    "SynthError",
    "SynthOptions",
    "check_not_benchmark",
    "decode_video",
    "encode_x264",
    "file_sources",
    "is_benchmark",
    "load_manifest",
    "package_stills",
    "sequence_pairs",
    "synthesize",
]


# --- sequence rendering ------------------------------------------------------------------------------------


@dataclass
class SynthOptions:
    """Knobs of the sequence synthesis (all motions in pixels per frame at the output size)."""

    size: tuple[int, int] = (512, 384)
    frames: int = 8
    camera_speed: float = 3.0  # max global pan per frame; 0 for a fixed camera
    static_camera_prob: float = 0.4
    objects: tuple[int, int] = (1, 5)  # min/max independently moving objects
    object_speed: float = 6.0
    parallax: float = 0.6  # extra camera-induced motion of the nearest object layer (depth layers)
    elastic: float = 1.5  # amplitude of the smooth local warp of the background
    blur_prob: float = 0.5  # share of sequences rendered with sub-frame motion blur
    crf: tuple[int, int] = (18, 30)  # x264 quality range; (0, 0) disables the codec round trip
    noise: float = 0.0  # dual-lens noise a·√κ on the colour frames (0 = off)


@dataclass
class _Layer:
    texture: np.ndarray  # RGB float32
    alpha: np.ndarray  # float32 0..1, same size
    pos: np.ndarray  # centre at frame 0
    vel: np.ndarray
    acc: np.ndarray
    angle_vel: float
    scale_vel: float
    depth: float  # 0 = far, 1 = near (parallax factor)


def _random_crop(img: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A random w×h crop, upscaling the still first when it is too small; random flip."""
    ih, iw = img.shape[:2]
    zoom = max(w / iw, h / ih, 1.0) * rng.uniform(1.0, 1.4)
    if zoom > 1.0:
        img = cv2.resize(img, (int(np.ceil(iw * zoom)), int(np.ceil(ih * zoom))), interpolation=cv2.INTER_CUBIC)
        ih, iw = img.shape[:2]
    x = int(rng.integers(0, iw - w + 1))
    y = int(rng.integers(0, ih - h + 1))
    crop = img[y : y + h, x : x + w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def _colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random saturation gain and hue rotation in the CbCr plane, so a few stills yield many colourings."""
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    c = ycc[..., 1:] - 128.0
    theta = rng.uniform(-np.pi, np.pi) if rng.random() < 0.5 else 0.0
    gain = rng.uniform(0.7, 1.5)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]], np.float32) * gain
    ycc[..., 1:] = c @ rot.T + 128.0
    return cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def _object_mask(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged random shape (ellipse, polygon, or an upright 'person-like' capsule)."""
    mask = np.zeros((h, w), np.uint8)
    kind = rng.integers(0, 3)
    if kind == 0:
        cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1)
    elif kind == 1:
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.55, 1.0, n)
        pts = np.stack([w / 2 + np.cos(ang) * rad * (w / 2 - 1), h / 2 + np.sin(ang) * rad * (h / 2 - 1)], 1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 255)
    else:
        r = max(2, w // 2 - 1)
        cv2.rectangle(mask, (w // 2 - r, r), (w // 2 + r, h - r), 255, -1)
        cv2.circle(mask, (w // 2, r), r, 255, -1)
        cv2.circle(mask, (w // 2, h - r), r, 255, -1)
    k = 2 * int(rng.integers(0, 2)) + 1
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (k, k), 0)


def _elastic_field(w: int, h: int, amp: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement field (h×w×2), amplitude ``amp`` pixels."""
    gw, gh = max(2, w // 64), max(2, h // 64)
    coarse = rng.standard_normal((gh, gw, 2)).astype(np.float32) * amp
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


class _Scene:
    """One synthetic scene: a background layer seen by a moving camera plus independently moving objects."""

    def __init__(self, stills: list[np.ndarray], opt: SynthOptions, rng: np.random.Generator):
        w, h = opt.size
        self.opt = opt
        self.w, self.h = w, h
        margin = int(opt.camera_speed * opt.frames * 2 + 8)
        bg = stills[int(rng.integers(len(stills)))]
        self.bg = _colour_jitter(_random_crop(bg, w + 2 * margin, h + 2 * margin, rng), rng).astype(np.float32)
        self.margin = margin
        static = rng.random() < opt.static_camera_prob
        speed = 0.0 if static else opt.camera_speed
        self.cam_vel = rng.uniform(-1, 1, 2) * speed
        self.cam_zoom = 0.0 if static else rng.uniform(-0.004, 0.004)
        self.cam_rot = 0.0 if static else rng.uniform(-0.002, 0.002)
        self.elastic = [_elastic_field(w, h, opt.elastic * rng.random(), rng) for _ in range(2)]
        self.layers: list[_Layer] = []
        n_obj = int(rng.integers(opt.objects[0], opt.objects[1] + 1))
        for _ in range(n_obj):
            ow = int(rng.uniform(0.08, 0.4) * w)
            oh = int(np.clip(ow * rng.uniform(0.5, 2.5), 12, 0.7 * h))
            ow = max(ow, 12)
            src = stills[int(rng.integers(len(stills)))]
            tex = _colour_jitter(_random_crop(src, ow, oh, rng), rng).astype(np.float32)
            speed_o = opt.object_speed * rng.uniform(0.1, 1.0)
            direction = rng.uniform(0, 2 * np.pi)
            self.layers.append(
                _Layer(
                    texture=tex,
                    alpha=_object_mask(ow, oh, rng),
                    pos=np.array([rng.uniform(0, w), rng.uniform(0, h)]),
                    vel=np.array([np.cos(direction), np.sin(direction)]) * speed_o,
                    acc=rng.normal(0, 0.15, 2),
                    angle_vel=rng.normal(0, 0.6),
                    scale_vel=rng.normal(0, 0.01),
                    depth=rng.uniform(0, 1),
                )
            )
        self.layers.sort(key=lambda layer: layer.depth)

    def camera(self, t: float) -> np.ndarray:
        """2×3 affine mapping output pixels to background-canvas pixels at time t."""
        s = 1.0 + self.cam_zoom * t
        a = self.cam_rot * t
        cx, cy = self.w / 2, self.h / 2
        m = np.array([[s * np.cos(a), -s * np.sin(a), 0.0], [s * np.sin(a), s * np.cos(a), 0.0]])
        m[:, 2] = [cx + self.margin, cy + self.margin] + self.cam_vel * t - m[:, :2] @ [cx, cy]
        return m

    def render(self, t: float) -> np.ndarray:
        """The RGB float32 frame at (possibly fractional) time t."""
        w, h = self.w, self.h
        m = self.camera(t)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mix = min(1.0, t / max(1, self.opt.frames - 1))
        el = self.elastic[0] * (1 - mix) + self.elastic[1] * mix
        mx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2] + el[..., 0]
        my = m[1, 0] * gx + m[1, 1] * gy + m[1, 2] + el[..., 1]
        frame = cv2.remap(
            self.bg, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        for layer in self.layers:
            centre = layer.pos + layer.vel * t + 0.5 * layer.acc * t * t
            centre = centre - self.cam_vel * t * (1.0 + self.opt.parallax * layer.depth)
            th, tw = layer.alpha.shape
            rot = cv2.getRotationMatrix2D((tw / 2, th / 2), layer.angle_vel * t, 1.0 + layer.scale_vel * t)
            rot[:, 2] += centre - [tw / 2, th / 2]
            tex = cv2.warpAffine(layer.texture, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
            alpha = cv2.warpAffine(layer.alpha, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
            frame = frame * (1 - alpha) + tex * alpha
        return frame

    def sequence(self, blur: bool) -> list[np.ndarray]:
        """All frames as RGB uint8; with ``blur`` each frame averages sub-frames over half a frame interval."""
        out = []
        for i in range(self.opt.frames):
            offsets = (-0.25, 0.0, 0.25) if blur else (0.0,)
            frame = sum(self.render(i + d) for d in offsets) / len(offsets)
            out.append(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
        return out


# --- datasets and pairs ------------------------------------------------------------------------------------


@dataclass
class Pair:
    """One training/evaluation pair, as a rig delivers it: low-res colour reference, mono luma, truth."""

    ref: np.ndarray  # h×w×3 uint8, frame 0 area-downsampled by ``scale``
    mono: np.ndarray  # H×W uint8 luma of frame ``gap``
    truth: np.ndarray  # H×W×3 uint8 colour frame ``gap``
    scale: int
    gap: int


def sequence_pairs(
    frames: list[np.ndarray],
    scales: Iterable[int],
    gaps: Iterable[int],
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Iterator[Pair]:
    """Pairs from one decoded sequence: the reference is frame 0, the target frame ``gap`` (crop to ×8)."""
    h, w = (frames[0].shape[0] // 8) * 8, (frames[0].shape[1] // 8) * 8
    rng = rng or np.random.default_rng(0)
    for s in scales:
        ref = downsample(frames[0][:h, :w], s)
        if noise > 0:
            ref = sensor_noise(ref, noise, rng)
        for g in gaps:
            if g < len(frames):
                truth = np.ascontiguousarray(frames[g][:h, :w])
                yield Pair(ref=ref, mono=luma(truth), truth=truth, scale=int(s), gap=int(g))


def synthesize(
    out_dir: str | Path,
    n_sequences: int,
    stills: list[tuple[str, np.ndarray]] | None = None,
    options: SynthOptions | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    progress: bool = False,
) -> DatasetManifest:
    """Render ``n_sequences`` sequences into ``out_dir`` (seq_NNNNN.mp4 + manifest.json).

    Sources are split by still: the last ``val_fraction`` of the stills only ever appear in validation
    sequences (as background and as objects), so validation measures generalization to unseen images.
    """
    opt = options or SynthOptions()
    stills = stills if stills is not None else package_stills()
    if len(stills) < 2:
        raise DataError("need at least 2 colour stills; install scikit-image/scikit-learn or pass --source files")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(stills))
    n_val_src = max(1, round(len(stills) * val_fraction))
    val_src = [stills[i][1] for i in order[:n_val_src]]
    train_src = [stills[i][1] for i in order[n_val_src:]]
    check_not_benchmark(name for name, _ in stills)
    manifest = DatasetManifest(
        kind="synthetic-video",
        sources=[stills[i][0] for i in order],
        options=asdict(opt),
        seed=seed,
    )
    t0 = time.time()
    n_val = max(1, round(n_sequences * val_fraction)) if val_fraction > 0 else 0
    seq_iter = range(n_sequences)
    if progress:
        try:
            from tqdm import tqdm

            seq_iter = tqdm(seq_iter, desc="synth", unit="seq")
        except ImportError:  # the progress bar is optional (tqdm comes with the [train] extra)
            pass
    for i in seq_iter:
        split = "val" if i < n_val else "train"
        scene = _Scene(val_src if split == "val" else train_src, opt, rng)
        blur = bool(rng.random() < opt.blur_prob)
        frames = scene.sequence(blur)
        if opt.noise > 0:
            frames = [sensor_noise(f, opt.noise, rng) for f in frames]
        crf = int(rng.integers(opt.crf[0], opt.crf[1] + 1)) if opt.crf[1] > 0 else 0
        name = f"seq_{i:05d}.mp4"
        data = encode_x264(frames, crf if crf > 0 else 0)
        (out / name).write_bytes(data)
        manifest.sequences.append({"file": name, "split": split, "crf": crf, "blur": blur})
    manifest.seconds = round(time.time() - t0, 1)
    manifest.counts = {"sequences": len(manifest.sequences), "frames": len(manifest.sequences) * opt.frames}
    write_manifest(out, manifest)
    return manifest
