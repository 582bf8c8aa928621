"""Degradations: the named registry, the 4:2:0 codec round trip, and the hooks later engines fill."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.color import rgb_to_ycbcr
from streamfuse.data import degrade
from streamfuse.data.benchmark import DataError


def test_registry_applies_steps_in_order_and_refuses_duplicates() -> None:
    frames = [textured_scene(48, 64, seed=i) for i in range(3)]
    out = degrade.apply_degradations(frames, [("sensor_noise", {"a": 0.05})], np.random.default_rng(0))
    assert len(out) == 3 and out[0].shape == frames[0].shape
    assert 0.5 < np.abs(out[0].astype(int) - frames[0].astype(int)).mean() < 10
    with pytest.raises(DataError, match="already registered"):
        degrade.register_degradation("sensor_noise")(lambda frames, rng: frames)
    with pytest.raises(DataError, match="known: .*codec_420"):
        degrade.get_degradation("nope")


def test_codec_round_trip_subsamples_chroma_and_keeps_luma() -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[::2, ::2] = rgb[1::2, 1::2] = (255, 0, 0)
    rgb[::2, 1::2] = rgb[1::2, ::2] = (0, 0, 255)
    (out,) = degrade.apply_degradations([rgb], [("codec_420", {"crf": 0})], np.random.default_rng(0))
    cr_in, cr_out = rgb_to_ycbcr(rgb)[..., 2].astype(float), rgb_to_ycbcr(out)[..., 2].astype(float)
    assert cr_in.std() > 50 and cr_out.std() < 0.5 * cr_in.std()
    y_in, y_out = rgb_to_ycbcr(rgb)[..., 0].astype(float), rgb_to_ycbcr(out)[..., 0].astype(float)
    assert np.abs(y_in - y_out).mean() < 0.5 * y_in.std()


@pytest.mark.parametrize(("name", "engine"), [("old_film", "Pik-Fix"), ("nir", "CoColor")])
def test_hooks_are_registered_and_name_the_engine_that_fills_them(name: str, engine: str) -> None:
    fn = degrade.get_degradation(name)
    try:
        out = fn([textured_scene(48, 64)], np.random.default_rng(0))
    except NotImplementedError as exc:
        assert engine in str(exc)
    else:  # filled in: one uint8 frame per input frame
        assert len(out) == 1 and out[0].dtype == np.uint8
