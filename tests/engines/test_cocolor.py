"""CoColor NIR engines: cross-spectral alignment, the classical local fit, both modes of the shipped engines,
streams, refusals, and a torch-free runtime."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.data.degrade import downsample, translation, warp_homography
from streamfuse.engines import load_engine
from streamfuse.engines.base import EngineError
from streamfuse.engines.cocolor import align_reference, nir_blocks
from streamfuse.metrics import psnr
from streamfuse.sources.synthetic_nir import NirParams, simulate_nir


def _scene(h: int = 192, w: int = 256, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rgb = textured_scene(h, w, seed)
    return rgb, simulate_nir(rgb, NirParams(vegetation_gain=1.2, sky_damping=0.7))


def test_alignment_recovers_a_shift_across_spectra():
    rgb, nir = _scene()
    ref = downsample(warp_homography(rgb, translation(8.0, -6.0)), 4)  # 2 and 1.5 reference pixels
    h, w = ref.shape[:2]
    g, _ = nir_blocks(nir, (w, h))
    aligned, warp = align_reference(g, rgb_to_ycbcr(ref).astype(np.float32))
    truth = rgb_to_ycbcr(downsample(rgb, 4)).astype(np.float32)
    inner = (slice(4, -4), slice(4, -4))
    before = np.abs(rgb_to_ycbcr(ref).astype(np.float32) - truth)[inner].mean()
    after = np.abs(aligned - truth)[inner].mean()
    assert after < 0.4 * before
    assert not np.allclose(warp, np.eye(3))


@pytest.mark.parametrize("name", ["nir-localfit", "cocolor", "cocolor-paper"])
def test_reference_mode_translates_nir_to_visible(name):
    rgb, nir = _scene()
    eng = load_engine(name)
    out = eng.colorize(nir, eng.prepare_reference(downsample(rgb, 4)))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    # the output's luma is the translated visible luma, not the NIR
    assert psnr(luma(out), luma(rgb)) > psnr(nir, luma(rgb)) + 3.0
    assert psnr(out, rgb) > psnr(cv2.cvtColor(nir, cv2.COLOR_GRAY2RGB), rgb) + 5.0


@pytest.mark.parametrize("name", ["cocolor", "cocolor-paper"])
def test_prior_mode_colorizes_nir_alone(name):
    rgb, nir = _scene(seed=2)
    out = load_engine(name).colorize(nir, None)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    chroma = rgb_to_ycbcr(out)[..., 1:].astype(np.float32)
    assert np.abs(chroma - 128).mean() > 1.0  # it is colour, not grey
    assert not np.array_equal(luma(out), nir)


def test_stream_switches_between_prior_and_reference():
    rgb, nir = _scene(seed=3)
    eng = load_engine("cocolor")
    stream = eng.open_stream()
    night = stream.colorize(nir)  # no colour camera yet: the prior
    np.testing.assert_array_equal(night, eng.colorize(nir, None))
    stream.push_reference(downsample(rgb, 4))
    day = stream.colorize(nir)
    np.testing.assert_array_equal(day, eng.colorize(nir, stream.state))
    assert psnr(day, rgb) > psnr(night, rgb)
    assert stream.frames == 2 and stream.references == 1


def test_bad_inputs_are_refused_with_the_fix():
    eng = load_engine("cocolor")
    with pytest.raises(EngineError, match="H×W uint8"):
        eng.colorize(np.zeros((32, 32, 3), np.uint8), None)
    with pytest.raises(EngineError, match="larger than the mono frame"):
        eng.colorize(np.zeros((32, 32), np.uint8), eng.prepare_reference(np.zeros((64, 64, 3), np.uint8)))


def test_nir_engines_flag_nir_and_rgb_engines_do_not():
    assert load_engine("cocolor").accepts_nir and load_engine("nir-localfit").accepts_nir
    assert not getattr(load_engine("guided"), "accepts_nir", False)
