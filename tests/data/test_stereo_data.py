"""Synthetic rectified stereo: horizontal parallax, the rig degradations, stills split without benchmark pairs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.data import stereo
from streamfuse.data.benchmark import benchmark_sources


def _stills() -> list[np.ndarray]:
    return [textured_scene(200, 260, seed=i) for i in range(4)]


def test_render_is_seeded_and_rectified() -> None:
    a = stereo.render_stereo(_stills(), np.random.default_rng(5), 96, 64, 24)
    b = stereo.render_stereo(_stills(), np.random.default_rng(5), 96, 64, 24)
    np.testing.assert_array_equal(a[0], b[0])
    left, right = a
    assert left.shape == right.shape == (64, 96, 3) and left.dtype == np.uint8
    assert np.abs(left.astype(int) - right.astype(int)).mean() > 1.0  # the views differ (parallax)
    # rectified: each right row is best explained by a horizontal shift of the same left row, not another row
    row = 32
    err_same = min(np.abs(left[row, s:].astype(int) - right[row, : 96 - s].astype(int)).mean() for s in range(30))
    err_other = min(np.abs(left[row - 20, s:].astype(int) - right[row, : 96 - s].astype(int)).mean() for s in range(30))
    assert err_same < err_other


def test_sample_pair_degrades_like_the_rig() -> None:
    rng = np.random.default_rng(2)
    samples = [stereo.sample_pair(_stills(), rng, 96, 64, 24) for _ in range(12)]
    for s in samples:
        assert s.mono.shape == (64, 96) and s.mono.dtype == np.uint8
        scale = s.meta["scale"]
        assert s.ref.shape[:2] == (round(64 / scale), round(96 / scale))
        assert 0.01 <= s.meta["noise"] <= 0.08
    assert {s.meta["small_baseline"] for s in samples} == {True, False}


def test_stereo_stills_hold_validation_aside_and_leave_out_benchmark_pairs() -> None:
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    train, val, manifest = stereo.stereo_stills()
    assert train and val and len(train) + len(val) == len(manifest.sources)
    assert benchmark_sources(manifest.sources) == []
    assert {i["source"] for i in manifest.sequences if i["split"] == "val"} <= set(stereo.VALIDATION_STILLS)
