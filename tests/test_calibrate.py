"""streamfuse calibrate: a rendered mixed-resolution rig with known ground truth, and the opencv-doc set.

The renderer at the top is also used by the rectification tests.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamfuse import calibrate as cb
from streamfuse.cli import main
from streamfuse.errors import ConfigError
from streamfuse.rectify import load_calibration

BOARD = (9, 6)
SQUARE = 0.03  # metres
BASELINE = 0.1  # metres; the right camera sits BASELINE to the right of the left camera
LEFT_SIZE = (640, 480)
RIGHT_SIZE = (320, 240)
K_LEFT = np.array([[600.0, 0, 322.0], [0, 600.0, 238.0], [0, 0, 1]])
K_RIGHT = np.array([[305.0, 0, 158.0], [0, 305.0, 121.0], [0, 0, 1]])
R_RIGHT = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]  # left-to-right rotation
T_RIGHT = np.array([-BASELINE, 0.002, 0.001])

_PPM = 2000.0  # texture pixels per metre
_MARGIN = 2  # squares of white margin around the pattern


def _texture() -> np.ndarray:
    cols, rows = BOARD[0] + 1 + 2 * _MARGIN, BOARD[1] + 1 + 2 * _MARGIN
    px = int(SQUARE * _PPM)
    tex = np.full((rows * px, cols * px), 235, np.uint8)
    for j in range(BOARD[1] + 1):
        for i in range(BOARD[0] + 1):
            if (i + j) % 2 == 0:
                y, x = (j + _MARGIN) * px, (i + _MARGIN) * px
                tex[y : y + px, x : x + px] = 20
    return tex


def _render(tex: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    ss = 4  # supersample, then area-downsample, for anti-aliased edges
    Ks = np.array([[ss, 0, (ss - 1) / 2], [0, ss, (ss - 1) / 2], [0, 0, 1]]) @ K  # pixel centres line up
    # Texture pixel (u, v) -> board metres: X = (u / ppm) - (1 + margin)·square (corner (0,0) is inner corner 0).
    off = (1 + _MARGIN) * SQUARE
    A = np.array([[1 / _PPM, 0, -off], [0, 1 / _PPM, -off], [0, 0, 1]])
    H = Ks @ np.column_stack([R[:, 0], R[:, 1], t]) @ A
    big = cv2.warpPerspective(tex, H, (size[0] * ss, size[1] * ss), flags=cv2.INTER_LINEAR, borderValue=110)
    return cv2.resize(big, size, interpolation=cv2.INTER_AREA)


def poses(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board poses (R, t) in the left camera frame, all visible to both cameras."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        rvec = np.array([rng.uniform(-0.45, 0.45), rng.uniform(-0.45, 0.45), rng.uniform(-0.2, 0.2)])
        R = cv2.Rodrigues(rvec)[0]
        center = np.array([(BOARD[0] - 1) * SQUARE / 2, (BOARD[1] - 1) * SQUARE / 2, 0])
        target = np.array([rng.uniform(-0.02, 0.12), rng.uniform(-0.06, 0.06), rng.uniform(0.75, 1.0)])
        out.append((R, target - R @ center))
    return out


def render_pairs(folder: Path, n: int = 8, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Write n left/right board images (left 640x480, right 320x240) into folder; returns their paths."""
    tex = _texture()
    rng = np.random.default_rng(seed + 1)
    lefts, rights = [], []
    for k, (R, t) in enumerate(poses(n, seed)):
        left = _render(tex, K_LEFT, R, t, LEFT_SIZE)
        right = _render(tex, K_RIGHT, R_RIGHT @ R, R_RIGHT @ t + T_RIGHT, RIGHT_SIZE)
        for img, name, paths in ((left, f"left{k:02d}.png", lefts), (right, f"right{k:02d}.png", rights)):
            noisy = np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / name), noisy)
            paths.append(folder / name)
    return lefts, rights


# --- tests ----------------------------------------------------------------------------------------------


OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def test_synthetic_mixed_resolution_rig_recovers_ground_truth(tmp_path: Path) -> None:
    lefts, rights = render_pairs(tmp_path, n=8)
    cal = cb.calibrate_stereo(lefts, rights, BOARD, SQUARE)
    assert cal.left.image_size == LEFT_SIZE and cal.right.image_size == RIGHT_SIZE
    assert cal.left.K[0, 0] == pytest.approx(K_LEFT[0, 0], rel=0.02)
    assert cal.right.K[0, 0] == pytest.approx(K_RIGHT[0, 0], rel=0.02)
    assert np.linalg.norm(cal.T) == pytest.approx(BASELINE, rel=0.03)
    assert cal.rms < 0.5 and cal.row_error < 0.5
    # The low-resolution camera stays at its own resolution after rectification.
    assert cal.right.rectified_size == RIGHT_SIZE and cal.left.rectified_size == LEFT_SIZE


def test_pairs_without_board_are_skipped_and_named(tmp_path: Path) -> None:
    lefts, rights = render_pairs(tmp_path, n=5)
    cv2.imwrite(str(lefts[2]), np.full((480, 640), 128, np.uint8))
    cal = cb.calibrate_stereo(lefts, rights, BOARD, SQUARE)
    assert cal.pairs_skipped == [f"{lefts[2].name}+{rights[2].name} (no board)"]
    assert len(cal.pairs_used) == 4


def test_cli_writes_yaml_with_everything_and_preview(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    render_pairs(tmp_path, n=6)
    out, prev = tmp_path / "cal" / "rig.yaml", tmp_path / "prev.png"
    rc = main(
        [
            "calibrate",
            "--left",
            str(tmp_path / "left*.png"),
            "--right",
            str(tmp_path / "right*.png"),
            "--board",
            "9x6",
            "--square",
            "3cm",
            "-o",
            str(out),
            "--preview",
            str(prev),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "stereo RMS" in printed and "rectified row error" in printed
    doc = load_calibration(out)
    for key in ("K", "dist", "R_rect", "P_rect", "image_size", "rectified_size", "rms_px"):
        assert key in doc["left"] and key in doc["right"]
    for key in ("R", "T_m", "E", "F", "Q", "rms_px", "rectified_row_error_px"):
        assert key in doc["stereo"]
    assert doc["board"]["square_m"] == pytest.approx(0.03) and "date" in doc
    preview = cv2.imread(str(prev))
    assert preview.shape == (480, 1280, 3)


def test_cli_reports_bad_board_argument(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["calibrate", "--left", "x*.png", "--right", "y*.png", "--board", "nine", "-o", str(tmp_path / "a")])
    assert rc == 2
    assert "no images match" in capsys.readouterr().err


@pytest.mark.parametrize("text,expected", [("25mm", 0.025), ("2.5cm", 0.025), ("0.025m", 0.025), ("30", 0.03)])
def test_square_size_units(text: str, expected: float) -> None:
    assert cb.parse_length(text) == pytest.approx(expected)


def test_bad_board_and_square_raise() -> None:
    with pytest.raises(ConfigError, match="9x6"):
        cb.parse_board("9-6")
    with pytest.raises(ConfigError, match="25mm"):
        cb.parse_length("-3in")


@pytest.mark.skipif(not (OPENCV_DATA / "left01.jpg").is_file(), reason="opencv-doc stereo set not installed")
def test_opencv_doc_set_meets_acceptance() -> None:
    lefts = sorted(OPENCV_DATA.glob("left[0-9]*.jpg"))
    rights = sorted(OPENCV_DATA.glob("right[0-9]*.jpg"))
    cal = cb.calibrate_stereo(lefts, rights, (9, 6), 0.025)
    assert len(cal.pairs_used) >= 10
    assert cal.rms <= 0.5
    assert cal.row_error <= 0.5
