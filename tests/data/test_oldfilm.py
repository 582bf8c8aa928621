"""Old-film damage: every step changes the picture, seeds reproduce, clips share a look but flicker and weave."""

from __future__ import annotations

import numpy as np
from conftest import textured_scene

from streamfuse.color import luma
from streamfuse.data.degrade import apply_degradations
from streamfuse.data.oldfilm import (
    HELD_OUT_STILLS,
    OLDFILM_STEPS,
    VAL_STILLS,
    FilmDamage,
    damage_clip,
    damage_frame,
    damage_photo,
    reference_view,
)


def test_photo_damage_is_grey_same_size_and_seeded():
    img = textured_scene(96, 128)
    a = damage_photo(img, np.random.default_rng(3))
    b = damage_photo(img, np.random.default_rng(3))
    assert a.shape == (96, 128) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, damage_photo(img, np.random.default_rng(4)))
    assert np.mean(np.abs(a.astype(float) - luma(img))) > 3  # it is damaged


def test_each_step_changes_the_frame():
    img = textured_scene(64, 64)
    base = luma(img).astype(np.float32)
    dmg = FilmDamage(
        tint=(1.0, 0.86, 0.66),
        gamma=1.3,
        contrast=0.6,
        lift=40.0,
        blur=1.5,
        grain=8.0,
        scratches=[(0.5, 2.0, 235.0, 0.9)],
        dust=20,
        jpeg=40,
        flicker=0.05,
        jitter=0.8,
        crack_prob=1.0,
    )
    assert set(OLDFILM_STEPS) >= {"tint", "blur", "fade", "jitter", "scratches", "dust", "grain", "jpeg"}
    for name, step in OLDFILM_STEPS.items():
        out = step(base.copy(), dmg, 0, np.random.default_rng(0), img)
        assert out.shape == base.shape
        assert np.mean(np.abs(out - base)) > 0.05, name


def test_fading_lowers_contrast_and_lifts_blacks():
    img = textured_scene(64, 64)
    dmg = FilmDamage(contrast=0.5, lift=60.0)
    out = damage_frame(img, dmg, 0, np.random.default_rng(0)).astype(float)
    y = luma(img).astype(float)
    assert out.std() < 0.6 * y.std()
    assert out.min() >= 59


def test_clip_shares_damage_but_flickers():
    frames = [textured_scene(64, 80)] * 6
    clip = damage_clip(frames, np.random.default_rng(1))
    assert len(clip) == 6 and all(f.shape == (64, 80) for f in clip)
    means = [float(f.mean()) for f in clip]
    assert np.std(means) > 0.05  # per-frame flicker
    assert not np.array_equal(clip[0], clip[1])  # dust and grain are new every frame


def test_registered_old_film_degradation():
    frames = [textured_scene(48, 64)] * 3
    out = apply_degradations(frames, [("old_film", {"strength": 0.8})], np.random.default_rng(0))
    assert len(out) == 3 and out[0].ndim == 2


def test_reference_view_and_splits():
    img = textured_scene(80, 96)
    whole = reference_view(img, np.random.default_rng(0), jitter=0.0)
    assert whole.shape == img.shape and not np.array_equal(whole, img)
    crop = reference_view(img, np.random.default_rng(0), crop=(8, 8, 48))
    assert crop.shape == (48, 48, 3)
    assert not set(HELD_OUT_STILLS) & set(VAL_STILLS)
