"""Rectifier: remap tables from a calibration YAML, row alignment of a mixed-resolution pair, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_calibrate import BOARD, LEFT_SIZE, RIGHT_SIZE, SQUARE, render_pairs

from streamfuse import calibrate as cb
from streamfuse.errors import ConfigError
from streamfuse.rectify import Rectifier, bench_rectify


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[Path]]:
    folder = tmp_path_factory.mktemp("rig")
    lefts, rights = render_pairs(folder, n=7, seed=3)
    path = folder / "rig.yaml"
    cb.calibrate_stereo(lefts, rights, BOARD, SQUARE).save(path)
    return path, lefts, rights


def test_rectified_rows_line_up_across_resolutions(rig: tuple[Path, list[Path], list[Path]]) -> None:
    path, lefts, rights = rig
    left, right = Rectifier.load(path, "left"), Rectifier.load(path, "right")
    assert left.output_size == LEFT_SIZE and right.output_size == RIGHT_SIZE
    # A view the calibration never saw: its corners must fall on the same rows after rectification.
    extra = path.parent / "unseen"
    extra.mkdir(exist_ok=True)
    extra_l, extra_r = render_pairs(extra, n=9, seed=11)
    rl = left.apply(cv2.imread(str(extra_l[8]), cv2.IMREAD_GRAYSCALE))
    rr = right.apply(cv2.imread(str(extra_r[8]), cv2.IMREAD_GRAYSCALE))
    assert rl.shape == (LEFT_SIZE[1], LEFT_SIZE[0]) and rr.shape == (RIGHT_SIZE[1], RIGHT_SIZE[0])
    cl, cr = cb.find_corners(rl, BOARD), cb.find_corners(rr, BOARD)
    assert cl is not None and cr is not None
    scale = LEFT_SIZE[1] / RIGHT_SIZE[1]  # upsampled as cv2.resize does: pixel centres aligned
    row_error = np.abs(cl[:, 0, 1] - (cr[:, 0, 1] * scale + (scale - 1) / 2)).mean()
    assert row_error < 0.6
    # Horizontal parallax remains (the board is in front of the rig): rectification kept the disparity.
    assert np.mean(cl[:, 0, 0] - cr[:, 0, 0] * scale) > 5


def test_rgb_frames_keep_their_channels(rig: tuple[Path, list[Path], list[Path]]) -> None:
    path, _, rights = rig
    rect = Rectifier.load(path, "right")
    rgb = cv2.cvtColor(cv2.imread(str(rights[0])), cv2.COLOR_BGR2RGB)
    out = rect.apply(rgb)
    assert out.shape == (RIGHT_SIZE[1], RIGHT_SIZE[0], 3) and out.dtype == np.uint8


def test_wrong_frame_size_names_the_calibration(rig: tuple[Path, list[Path], list[Path]]) -> None:
    path, _, _ = rig
    with pytest.raises(ConfigError, match="rig.yaml"):
        Rectifier.load(path, "left").apply(np.zeros((100, 100), np.uint8))


def test_bench_rectify_reports_ms_per_frame(rig: tuple[Path, list[Path], list[Path]]) -> None:
    path, lefts, _ = rig
    ms = bench_rectify(Rectifier.load(path, "left"), [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in lefts[:2]])
    assert isinstance(ms, float) and ms > 0


@pytest.mark.parametrize(
    "content,match",
    [
        (None, "not found"),
        ("a: [1, 2\n", "not valid YAML"),
        ("foo: 1\n", "not a streamfuse calibration"),
        ("streamfuse_calibration: 1\nleft: {}\n", "left.K is missing"),
    ],
)
def test_bad_calibration_files_raise_config_error(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "cal.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=match) as info:
        Rectifier.load(path, "left")
    assert str(path) in str(info.value)


def test_wrong_matrix_shape_is_named(rig: tuple[Path, list[Path], list[Path]], tmp_path: Path) -> None:
    path, _, _ = rig
    text = path.read_text().replace("rectified_size: [320, 240]", "rectified_size: [320]")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=r"right.rectified_size has shape"):
        Rectifier.load(bad, "right")


def test_unknown_camera_is_rejected(rig: tuple[Path, list[Path], list[Path]]) -> None:
    with pytest.raises(ConfigError, match="'left' or 'right'"):
        Rectifier.load(rig[0], "mono")
