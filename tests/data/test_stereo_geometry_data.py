"""Synthetic stereo beyond rectified rows: tilted baselines, pairs cut from translating video, a rig video."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import textured_scene

from streamfuse.color import luma
from streamfuse.data import stereo


def _stills() -> list[np.ndarray]:
    return [textured_scene(200, 260, seed=i) for i in range(4)]


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ya, yb = (luma(v).astype(np.float32) for v in (a, b))
    return cv2.phaseCorrelate(ya, yb, cv2.createHanningWindow(ya.shape[::-1], cv2.CV_32F))[0]


def test_a_tilted_baseline_moves_the_right_view_down_with_disparity() -> None:
    # One flat background layer at a known disparity: the tilt adds d·tan(tilt) rows of vertical parallax.
    stills = _stills()
    rng = np.random.default_rng(1)
    flat = stereo.render_stereo(stills, np.random.default_rng(1), 128, 96, 24)
    tilted = stereo.render_stereo(stills, np.random.default_rng(1), 128, 96, 24, tilt_deg=30.0)
    _, dy_flat = _shift(*flat)
    _, dy_tilt = _shift(*tilted)
    assert abs(dy_flat) < 1.5 and dy_tilt < dy_flat - 3  # the right view sees the scene higher (y − d·tan)
    samples = [stereo.sample_pair(stills, rng, 96, 64, 24, tilt_share=1.0) for _ in range(4)]
    assert all(0 < abs(s.meta["tilt_deg"]) <= stereo.TILT_DEG for s in samples)


def test_orient_pair_makes_a_translating_camera_look_like_a_right_camera() -> None:
    scene = textured_scene(160, 200, seed=3)
    a = scene[20:120, 20:160]
    for moved, transposed in ((scene[20:120, 30:170], False), (scene[12:112, 20:160], True)):
        pair = stereo.orient_pair(a, moved)
        assert pair is not None
        left, right = pair
        assert (left.shape[0] > left.shape[1]) == transposed
        dx, dy = _shift(left, right)
        assert dx < -5 and abs(dy) < 1.5  # the second view sees the scene to the left, rows aligned
    assert stereo.orient_pair(a, a) is None  # no motion: no stereo


def test_stereo_rig_video_pans_a_fixed_rig() -> None:
    video = stereo.stereo_rig_video(_stills(), np.random.default_rng(0), 96, 64, 4, 16, pan=3)
    assert len(video) == 4 and all(s.mono.shape == (64, 96) for s in video)
    np.testing.assert_array_equal(video[1].left[:, :-3], video[0].left[:, 3:])  # the rig pans 3 px per frame
    assert not np.array_equal(video[0].mono[:, 3:], video[1].mono[:, :-3])  # fresh sensor noise each frame
