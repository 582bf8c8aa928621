"""Synthetic camera arrays: each mono camera sees the scene from its own place, with its own sensor noise."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from streamfuse.config import synthetic_rig_config
from streamfuse.sources import open_source


def first(cfg, camera: str):
    return next(itertools.islice(open_source(cfg, camera, 2).frames(), 1))


def test_view_shift_moves_the_camera_and_its_truth(small_video: Path) -> None:
    cfg = synthetic_rig_config((160, 120), video=small_video)
    cfg.cameras["m2"] = type(cfg.cameras["mono"])(role="mono", source="synthetic", view_shift=(4.0, 0.0))
    base, shifted = first(cfg, "mono"), first(cfg, "m2")
    # output pixel x samples the scene at x - 4: the content moved 4 px to the right
    assert np.abs(shifted.truth[:, 8:-8].astype(int) - base.truth[:, 4:-12].astype(int)).mean() < 1.0
    assert np.abs(shifted.truth.astype(int) - base.truth.astype(int)).mean() > 5.0
    cfg.cameras["m3"] = type(cfg.cameras["mono"])(role="mono", source="synthetic")
    twin = first(cfg, "m3")
    assert np.array_equal(twin.truth, first(cfg, "mono").truth)  # same place, same scene
    assert not np.array_equal(twin.image, first(cfg, "mono").image)  # but its own sensor noise
