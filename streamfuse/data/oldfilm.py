"""Old-film and old-photo damage: scratches, dust, grain, blur, fading, sepia/tint, JPEG, frame jitter, flicker.

Pik-Fix (papers/pikfix-old-photo-restoration.md) trains on clean pictures with synthesized old-photo damage. The
damage here follows that recipe (compositing of defects at random transparency, Gaussian blur, faded tone) and
adds what film has on top: a per-clip tone and defect budget, and per-frame flicker, weave (jitter), moving dust
and scratches that persist over frames with a small drift.

Every degradation takes the clean RGB frame and returns the degraded *grey* frame (uint8 H×W), as an old
black-and-white scan delivers it. ``FilmDamage`` holds one clip's parameters, so a clip's frames share a look.
All randomness comes from the ``numpy.random.Generator`` handed in (seeded by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamfuse.color import luma

# name -> function(grey float32 0..255, damage, frame index, rng) -> grey float32; applied in this order.
OLDFILM_STEPS: dict[str, Callable[..., np.ndarray]] = {}


def register_step(name: str) -> Callable:
    """Register one damage step under ``name`` (a name that is taken raises)."""

    def deco(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in OLDFILM_STEPS:
            raise ValueError(f"old-film step {name!r} is already registered")
        OLDFILM_STEPS[name] = fn
        return fn

    return deco


@dataclass
class FilmDamage:
    """One clip's (or photo's) damage parameters, drawn by :meth:`sample`; ``strength`` scales the budget."""

    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-RGB gain before the grey conversion (sepia, tints)
    gamma: float = 1.0
    contrast: float = 1.0  # fading: y' = lift + contrast·y
    lift: float = 0.0
    blur: float = 0.0  # Gaussian sigma, px at the frame size
    grain: float = 0.0  # grain std (0..255), spatially correlated
    scratches: list[tuple[float, float, float, float]] = field(default_factory=list)  # (x/W, width px, value, alpha)
    dust: int = 0  # specks per frame
    jpeg: int = 0  # JPEG quality, 0 = none
    flicker: float = 0.0  # per-frame brightness gain std
    jitter: float = 0.0  # per-frame weave, px (std)
    crack_prob: float = 0.0  # photos: chance of white polygonal damage (the paper's "pure white regions")

    @classmethod
    def sample(cls, rng: np.random.Generator, strength: float = 1.0, film: bool = True) -> FilmDamage:
        """Draw a damage budget. ``film`` adds the temporal defects (flicker, jitter); photos get cracks instead."""
        s = float(np.clip(strength, 0.0, 1.5))
        sepia = rng.random() < 0.4
        tint = (1.0, 0.86, 0.66) if sepia else tuple(1.0 + rng.uniform(-0.12, 0.12, 3) * s)
        contrast = 1.0 - rng.uniform(0.15, 0.55) * s
        lift = rng.uniform(0.1, 0.9) * (1.0 - contrast) * 255.0
        n_scr = int(rng.integers(0, 4) * min(1.0, s + 0.3))
        scratches = [
            (
                float(rng.uniform(0.05, 0.95)),
                float(rng.uniform(0.6, 2.5)),
                float(rng.choice([20.0, 235.0])),
                float(rng.uniform(0.3, 0.9)),
            )
            for _ in range(n_scr)
        ]
        return cls(
            tint=tuple(float(t) for t in tint),
            gamma=float(np.exp(rng.uniform(-0.35, 0.35) * s)),
            contrast=float(contrast),
            lift=float(lift),
            blur=float(rng.uniform(0.0, 1.8) * s),
            grain=float(rng.uniform(2.0, 10.0) * s),
            scratches=scratches,
            dust=int(rng.integers(0, 30) * s),
            jpeg=int(rng.integers(35, 90)) if rng.random() < 0.6 else 0,
            flicker=float(rng.uniform(0.01, 0.06) * s) if film else 0.0,
            jitter=float(rng.uniform(0.0, 0.8) * s) if film else 0.0,
            crack_prob=0.0 if film else 0.5 * s,
        )


@register_step("tint")
def _tint(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Sepia or a colour cast on the print, seen through a grey scan: a different luma weighting of RGB."""
    if dmg.tint == (1.0, 1.0, 1.0):
        return grey
    toned = np.clip(rgb.astype(np.float32) * np.asarray(dmg.tint, np.float32), 0, 255)
    return cv2.cvtColor(toned, cv2.COLOR_RGB2GRAY)


@register_step("blur")
def _blur(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Defocus and lens softness."""
    return cv2.GaussianBlur(grey, (0, 0), dmg.blur) if dmg.blur > 0.3 else grey


@register_step("fade")
def _fade(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Faded tone: a gamma, lost contrast and a lifted black level, with per-frame flicker on film."""
    y = 255.0 * np.power(np.clip(grey, 0, 255) / 255.0, dmg.gamma)
    gain = 1.0 + (rng.normal(0.0, dmg.flicker) if dmg.flicker > 0 else 0.0)
    return dmg.lift + dmg.contrast * gain * y


@register_step("jitter")
def _jitter(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Gate weave: a small per-frame shift of the picture."""
    if dmg.jitter <= 0:
        return grey
    dx, dy = rng.normal(0.0, dmg.jitter, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(grey, m, (grey.shape[1], grey.shape[0]), borderMode=cv2.BORDER_REFLECT101)


@register_step("scratches")
def _scratches(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Vertical scratches (persist over a clip, drift slowly) and, on photos, cracks and white torn areas."""
    h, w = grey.shape
    out = grey
    for x0, width, value, alpha in dmg.scratches:
        x = (x0 + 0.002 * t + rng.normal(0, 0.001)) % 1.0 * w
        mask = np.zeros((h, w), np.float32)
        wobble = np.cumsum(rng.normal(0, 0.3, h)).astype(np.float32)
        xs = np.clip(x + wobble, 0, w - 1)
        for y in range(0, h, 4):
            cv2.line(mask, (int(xs[y]), y), (int(xs[min(y + 4, h - 1)]), min(y + 4, h - 1)), 1.0, max(1, round(width)))
        mask = cv2.GaussianBlur(mask, (0, 0), 0.7) * alpha
        out = out * (1 - mask) + value * mask
    if dmg.crack_prob > 0 and rng.random() < dmg.crack_prob:
        mask = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 4))):
            pts = rng.uniform(0, 1, (int(rng.integers(3, 7)), 2)) * 0.15 + rng.uniform(0, 0.85, 2)
            cv2.fillPoly(mask, [(pts * [w, h]).astype(np.int32)], 1.0)
        for _ in range(int(rng.integers(1, 4))):
            p = rng.uniform(0, 1, 2) * [w, h]
            for _ in range(12):
                q = p + rng.normal(0, 0.03, 2) * [w, h]
                cv2.line(mask, tuple(int(v) for v in p), tuple(int(v) for v in q), 1.0, 1)
                p = q
        out = out * (1 - mask) + 245.0 * mask
    return out


@register_step("dust")
def _dust(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Dust and dirt specks, new ones each frame (dark on a print, bright on a negative)."""
    if dmg.dust <= 0:
        return grey
    h, w = grey.shape
    mask = np.zeros((h, w), np.float32)
    val = np.zeros((h, w), np.float32)
    for _ in range(int(rng.poisson(dmg.dust))):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
        v = 15.0 if rng.random() < 0.7 else 240.0
        cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        cv2.ellipse(val, c, axes, float(rng.uniform(0, 180)), 0, 360, v, -1)
    return grey * (1 - mask) + val * mask


@register_step("grain")
def _grain(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Film grain: spatially correlated noise, stronger in the mid-tones."""
    if dmg.grain <= 0:
        return grey
    n = rng.standard_normal(grey.shape, dtype=np.float32)
    n = cv2.GaussianBlur(n, (0, 0), 0.8) * 1.9
    mid = 0.4 + 0.6 * np.sin(np.clip(grey, 0, 255) / 255.0 * np.pi)
    return grey + dmg.grain * mid * n


@register_step("jpeg")
def _jpeg(grey: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """A lossy scan: JPEG round trip."""
    if dmg.jpeg <= 0:
        return grey
    g8 = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", g8, [cv2.IMWRITE_JPEG_QUALITY, dmg.jpeg])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) if ok else grey


def damage_frame(rgb: np.ndarray, dmg: FilmDamage, t: int, rng: np.random.Generator) -> np.ndarray:
    """Degrade one clean RGB frame (uint8) to an old grey frame (uint8 H×W) with the clip's damage ``dmg``."""
    grey = luma(rgb).astype(np.float32)
    for step in OLDFILM_STEPS.values():
        grey = step(grey, dmg, t, rng, rgb)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def damage_photo(rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """An old photo (no temporal defects) from one clean RGB still."""
    return damage_frame(rgb, FilmDamage.sample(rng, strength, film=False), 0, rng)


def damage_clip(frames: list[np.ndarray], rng: np.random.Generator, strength: float = 1.0) -> list[np.ndarray]:
    """An old film clip: one damage budget for the clip, per-frame flicker, weave, dust and drifting scratches."""
    dmg = FilmDamage.sample(rng, strength, film=True)
    return [damage_frame(f, dmg, t, rng) for t, f in enumerate(frames)]


# --- which pictures train and which are held aside --------------------------------------------------------------

# Package stills held aside for the oldfilm protocol (never trained on), and for training-time validation.
HELD_OUT_STILLS: tuple[str, ...] = (
    "skimage:coffee",
    "skimage:chelsea",
    "sklearn:china.jpg",
    "opencv-doc:fruits.jpg",
    "opencv-doc:baboon.jpg",
    "opencv-doc:home.jpg",
    "opencv-doc:butterfly.jpg",
    "opencv-doc:building.jpg",
    "opencv-doc:squirrel_cls.jpg",
    "opencv-doc:smarties.png",
)
VAL_STILLS: tuple[str, ...] = ("skimage:rocket", "opencv-doc:orange.jpg", "opencv-doc:aero3.jpg")
CLIP_LEN = 13
MAX_SIDE = 360  # training clips are downscaled so their longer side is at most this


def training_clips(max_frames: int = 120, clip_len: int = CLIP_LEN) -> list[list[np.ndarray]]:
    """Clips (no scene cut) from the first ``max_frames`` frames of every installed allow-listed video."""
    from streamfuse.data.video import SCENE_CUT, iter_frames, training_videos

    clips: list[list[np.ndarray]] = []
    for path in training_videos():
        frames: list[np.ndarray] = []
        for i, f in enumerate(iter_frames(path)):
            if i >= max_frames:
                break
            k = MAX_SIDE / max(f.shape[:2])
            frames.append(cv2.resize(f, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else f)
        for s in range(0, len(frames) - clip_len + 1, clip_len):
            clip = frames[s : s + clip_len]
            ys = [luma(c).astype(np.int16) for c in clip]
            if all(float(np.mean(np.abs(a - b))) <= SCENE_CUT for a, b in zip(ys, ys[1:], strict=False)):
                clips.append(clip)
    return clips


def _register() -> None:
    """Fill the data layer's ``old_film`` hook with this module's damage."""
    from streamfuse.data.degrade import register_degradation

    def old_film(frames: list[np.ndarray], rng: np.random.Generator, *, strength: float = 1.0, **_: float) -> list:
        """Old-film damage of a clip (RGB frames in, grey frames out); ``strength`` scales the damage budget."""
        return damage_clip(frames, rng, strength)

    register_degradation("old_film", replace=True)(old_film)


_register()


def reference_view(
    img: np.ndarray, rng: np.random.Generator, crop: tuple[int, int, int] | None = None, jitter: float = 0.07
) -> np.ndarray:
    """A colour reference made from the picture itself (Pik-Fix §4.1): shifted crop, small rotation and scale,
    a smooth elastic warp and a colour jitter of ±``jitter``.

    ``crop`` = (x, y, size): a square crop at about that place (training); None: the whole picture (evaluation).
    """
    h, w = img.shape[:2]
    if crop is None:
        ref, (cw, ch) = img.astype(np.float32), (w, h)
        shift = 0.04 * np.array([w, h]) * rng.uniform(-1, 1, 2)
    else:
        x, y, size = crop
        dx = int(np.clip(x + rng.integers(-size // 4, size // 4 + 1), 0, w - size))
        dy = int(np.clip(y + rng.integers(-size // 4, size // 4 + 1), 0, h - size))
        ref, (cw, ch) = img[dy : dy + size, dx : dx + size].astype(np.float32), (size, size)
        shift = np.zeros(2)
    m = cv2.getRotationMatrix2D((cw / 2, ch / 2), float(rng.uniform(-6, 6)), float(rng.uniform(0.92, 1.08)))
    m[:, 2] += shift
    ref = cv2.warpAffine(ref, m, (cw, ch), borderMode=cv2.BORDER_REFLECT101)
    field_ = cv2.GaussianBlur(rng.standard_normal((ch, cw, 2)).astype(np.float32), (0, 0), max(cw, ch) / 8)
    field_ *= 2.5 / (np.abs(field_).max() + 1e-6)
    gx, gy = np.meshgrid(np.arange(cw, dtype=np.float32), np.arange(ch, dtype=np.float32))
    ref = cv2.remap(ref, gx + field_[..., 0], gy + field_[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if jitter > 0:
        ref = ref * rng.uniform(1 - jitter, 1 + jitter, 3).astype(np.float32)
    return np.clip(ref, 0, 255).astype(np.uint8)
