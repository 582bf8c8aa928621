"""The classical engines on generated data: guided beats naive under parallax; its refinement pieces."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.color import luma
from streamfuse.data.degrade import downsample, sensor_noise, translation, warp_homography
from streamfuse.engines import EngineError, load_engine
from streamfuse.engines.guided import NOISE_FLOOR, estimate_noise, weighted_linear_fill
from streamfuse.metrics import psnr_cbcr


def _parallax_pair(shift: float = 9.0, scale: float = 4.0, seed: int = 5):
    truth = textured_scene(192, 256, seed=seed)
    ref = downsample(warp_homography(truth, translation(shift, 3.0)), scale)  # the colour camera sits aside
    return luma(truth), ref, truth


def test_guided_beats_naive_on_a_parallax_pair():
    mono, ref, truth = _parallax_pair()
    scores = {}
    for name in ("naive", "guided"):
        engine = load_engine(name)
        scores[name] = psnr_cbcr(engine.colorize(mono, engine.prepare_reference(ref)), truth)
    assert scores["guided"] > scores["naive"] + 3.0, scores


def test_guided_reuses_the_reference_and_seeds_the_flow():
    mono, ref, truth = _parallax_pair()
    engine = load_engine("guided")
    state = engine.prepare_reference(ref)
    first = engine.colorize(mono, state)
    assert "flow" in state.features
    second = engine.colorize(mono, state)
    assert engine.reference_calls == 1
    assert psnr_cbcr(second, truth) > psnr_cbcr(first, truth) - 0.5  # seeding from a good flow stays good


def test_noise_estimate_separates_clean_and_noisy_references():
    clean = textured_scene(72, 96, seed=2)
    noisy = sensor_noise(clean, 0.07, np.random.default_rng(0))
    y_clean = luma(clean).astype(np.float32)
    y_noisy = luma(noisy).astype(np.float32)
    assert estimate_noise(y_clean) < NOISE_FLOOR < estimate_noise(y_noisy)
    flat = np.full((64, 64), 100.0, np.float32) + np.random.default_rng(1).normal(0, 5.0, (64, 64)).astype(np.float32)
    assert estimate_noise(flat) == pytest.approx(5.0, rel=0.35)  # a low quantile of blocks reads a bit low


def test_occlusion_fill_predicts_chroma_from_luma_where_the_warp_is_wrong():
    rng = np.random.default_rng(3)
    guide = rng.uniform(40, 200, (32, 32)).astype(np.float32)
    chroma = np.dstack([0.5 * guide + 20, -0.25 * guide + 180]).astype(np.float32)
    weight = np.ones((32, 32), np.float32)
    weight[10:20, 10:20] = 0.0
    chroma[10:20, 10:20] = 128.0  # what a failed warp delivers there
    coef = weighted_linear_fill(guide, chroma, weight, radius=6, eps=1.0)  # every window sees the rest
    fill = coef[..., :2] * guide[..., None] + coef[..., 2:]
    truth = np.dstack([0.5 * guide + 20, -0.25 * guide + 180])
    assert np.abs(fill - truth)[10:20, 10:20].max() < 0.5


def test_guided_noisy_reference_is_denoised():
    mono, ref, truth = _parallax_pair(shift=0.0, scale=1.0)
    noisy = sensor_noise(ref, 0.07, np.random.default_rng(4))
    on = load_engine("guided")
    off = load_engine("guided", denoise="off", detail=0.0)
    assert psnr_cbcr(on.colorize(mono, noisy), truth) > psnr_cbcr(off.colorize(mono, noisy), truth) + 1.0


def test_guided_rejects_bad_options():
    with pytest.raises(EngineError, match="denoise"):
        load_engine("guided", denoise="maybe")
    with pytest.raises(EngineError, match="preset"):
        load_engine("guided", preset="slow")
