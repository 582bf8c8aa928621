"""CPU tests of TensorRT shape logic: frame profiles, per-input profile shapes, buffer planning."""

import numpy as np
import pytest

from streamfuse.runtime.base import BackendUnavailable
from streamfuse.runtime.trt_shapes import (
    DEFAULT_PROFILE,
    ProfileError,
    ShapeProfile,
    check_shape,
    frame_profile,
    grown_capacity,
    input_shapes,
    plan_buffers,
    select_profile,
)


def test_profile_parse_and_order_check():
    p = ShapeProfile.parse("320x240:1280x720:1920x1088")
    assert p == DEFAULT_PROFILE
    assert str(p) == "320x240:1280x720:1920x1088"
    with pytest.raises(ValueError, match="heights out of order"):
        ShapeProfile((320, 800), (1280, 720), (1920, 1088))
    with pytest.raises(ValueError, match="min:opt:max"):
        ShapeProfile.parse("320x240:1920x1088")
    with pytest.raises(ValueError, match="1280x720"):
        ShapeProfile.parse("320x240:big:1920x1088")


def test_select_profile_picks_covering_profile_with_nearest_opt():
    small = ShapeProfile((160, 120), (320, 240), (640, 480))
    big = ShapeProfile((320, 240), (1280, 720), (1920, 1088))
    assert select_profile([small, big], 1280, 720) == 1
    assert select_profile([small, big], 320, 240) == 0  # both cover it; small's opt is exact
    assert select_profile([small, big], 1920, 1088) == 1  # bounds are inclusive


def test_select_profile_out_of_range_names_frame_and_fix():
    with pytest.raises(ProfileError) as info:
        select_profile([DEFAULT_PROFILE], 3840, 2160)
    message = str(info.value)
    assert "3840x2160" in message and "320x240..1920x1088" in message
    assert "build-engine" in message and "use backend=onnxruntime instead" in message
    assert isinstance(info.value, BackendUnavailable)  # so the CLI prints it as one line
    with pytest.raises(ProfileError):
        select_profile([DEFAULT_PROFILE], 1280, 200)  # height alone below the minimum


def test_input_shapes_full_resolution_nchw():
    lo, opt, hi = input_shapes((-1, 1, -1, -1), DEFAULT_PROFILE)
    assert (lo, opt, hi) == ((1, 1, 240, 320), (1, 1, 720, 1280), (1, 1, 1088, 1920))


def test_input_shapes_reference_branch_scale_range():
    lo, opt, hi = input_shapes((1, 3, -1, -1), DEFAULT_PROFILE, scale=(0.125, 0.25))
    assert lo == (1, 3, 30, 40)  # min frame × 1/8
    assert hi == (1, 3, 272, 480)  # max frame × 1/4
    assert lo <= opt <= hi and opt[2:] == (127, 226)  # opt frame × sqrt(1/8 · 1/4)


def test_input_shapes_static_and_bad_dynamic_dims():
    assert input_shapes((1, 3, 64, 64), DEFAULT_PROFILE) == ((1, 3, 64, 64),) * 3  # static graph untouched
    with pytest.raises(ValueError, match="static channels"):
        input_shapes((1, -1, -1, -1), DEFAULT_PROFILE)
    with pytest.raises(ValueError, match="0 < low <= high"):
        input_shapes((1, 1, -1, -1), DEFAULT_PROFILE, scale=(0.5, 0.25))


def test_frame_profile_round_trips_input_bounds():
    bounds = input_shapes((1, 1, -1, -1), DEFAULT_PROFILE)
    assert frame_profile(bounds) == DEFAULT_PROFILE


def test_check_shape_names_the_input():
    bounds = input_shapes((1, 1, -1, -1), DEFAULT_PROFILE)
    check_shape("mono", (1, 1, 576, 768), bounds)
    with pytest.raises(ProfileError, match="'mono'.*\\(1, 1, 2160, 3840\\)"):
        check_shape("mono", (1, 1, 2160, 3840), bounds)
    with pytest.raises(ProfileError):
        check_shape("mono", (1, 576, 768), bounds)  # wrong rank


def test_plan_buffers_aligns_and_views_round_trip():
    plan = plan_buffers({"a": ((1, 1, 3, 5), np.float32), "b": ((7,), np.uint8), "c": ((2, 2), np.float16)})
    a, b, c = plan.tensors["a"], plan.tensors["b"], plan.tensors["c"]
    assert (a.offset, a.nbytes) == (0, 60)
    assert (b.offset, b.nbytes) == (256, 7)
    assert (c.offset, c.nbytes) == (512, 8)
    assert plan.total == 768 and all(t.offset % 256 == 0 for t in plan.tensors.values())
    arena = np.zeros(plan.total, np.uint8)
    plan.view(arena, "a")[:] = np.arange(15, dtype=np.float32).reshape(1, 1, 3, 5)
    plan.view(arena, "b")[:] = 9
    assert plan.view(arena, "a").sum() == 105 and plan.view(arena, "b").dtype == np.uint8
    assert arena[256:263].tolist() == [9] * 7 and arena[60:256].sum() == 0  # no overlap


def test_plan_buffers_per_shape():
    small = plan_buffers({"x": ((1, 1, 240, 320), np.float32)})
    large = plan_buffers({"x": ((1, 1, 1088, 1920), np.float32)})
    assert small.total == 240 * 320 * 4 and large.total == 1088 * 1920 * 4
    with pytest.raises(ValueError, match="dynamic"):
        plan_buffers({"x": ((1, 1, -1, 320), np.float32)})


def test_grown_capacity_grows_only_when_needed():
    assert grown_capacity(4096, 1000) == 4096
    assert grown_capacity(0, 1000) == 1024
    grown = grown_capacity(4096, 5000)
    assert grown >= 6144 and grown % 256 == 0  # 1.5x so sizes alternating around the limit settle
