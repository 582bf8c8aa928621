"""Stereo calibration of a mono + colour rig from chessboard pairs, for cameras of different resolutions.

Each camera's intrinsics are calibrated at its own resolution. ``cv2.stereoRectify`` needs one image size, so
the second (right) camera's intrinsics and corners are scaled to the first (left) camera's size ("common size")
for the stereo step; its rectification is then mapped back to its own resolution, so a low-resolution colour
camera stays low-resolution after rectification and its rows line up with the mono rows after upsampling.
"""

from __future__ import annotations

import datetime as _dt
import glob
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamfuse.errors import ConfigError, ImageReadError

CALIBRATION_VERSION = 1
_UNITS = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
_SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-3)
_STEREO_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-6)


def parse_board(text: str) -> tuple[int, int]:
    """Parse ``'9x6'`` (inner corners per row x per column) into (cols, rows)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or min(int(m[1]), int(m[2])) < 2:
        raise ConfigError(f"board must be inner corners like 9x6, got {text!r}")
    return int(m[1]), int(m[2])


def parse_length(text: str) -> float:
    """Parse a square size such as ``'25mm'``, ``'2.5cm'`` or ``'0.025m'`` into metres (bare numbers are mm)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(mm|cm|m)?\s*", text)
    if not m or float(m[1]) <= 0:
        raise ConfigError(f"square size must look like 25mm, 2.5cm or 0.025m, got {text!r}")
    return float(m[1]) * _UNITS[m[2] or "mm"]


def expand_images(pattern: str) -> list[Path]:
    """Sorted files matching a glob pattern (or a single path); raises when nothing matches."""
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise ConfigError(f"no images match {pattern!r}; quote the glob and check the folder")
    return paths


def board_points(board: tuple[int, int], square: float) -> np.ndarray:
    """3-D corner positions (metres) of a planar chessboard, row-major as OpenCV detects them."""
    cols, rows = board
    grid = np.zeros((rows * cols, 3), np.float32)
    grid[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square
    return grid


def find_corners(gray: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """Sub-pixel chessboard corners (N×1×2 float32) or None when the board is not found."""
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    found, corners = cv2.findChessboardCorners(gray, board, flags=flags)
    if not found:
        return None
    win = max(3, min(11, round(_min_spacing(corners) / 2) - 1))  # small boards need a small search window
    corners = cv2.cornerSubPix(gray, corners.reshape(-1, 1, 2), (win, win), (-1, -1), _SUBPIX_CRITERIA)
    return corners.reshape(-1, 1, 2).astype(np.float32)


def _min_spacing(corners: np.ndarray) -> float:
    pts = corners.reshape(-1, 2)
    return float(np.min(np.linalg.norm(np.diff(pts, axis=0), axis=1)))


@dataclass
class CameraCalibration:
    """Intrinsics and rectification of one camera, in that camera's own pixels."""

    image_size: tuple[int, int]  # (w, h) of the raw frames
    K: np.ndarray
    dist: np.ndarray
    rms: float
    R: np.ndarray = field(default_factory=lambda: np.eye(3))  # rectifying rotation
    P: np.ndarray = field(default_factory=lambda: np.zeros((3, 4)))  # projection in rectified pixels
    rectified_size: tuple[int, int] = (0, 0)


@dataclass
class StereoCalibration:
    """Everything ``streamfuse calibrate`` measures; ``save`` writes it as the calibration YAML."""

    board: tuple[int, int]
    square: float
    left: CameraCalibration
    right: CameraCalibration
    R: np.ndarray
    T: np.ndarray
    E: np.ndarray
    F: np.ndarray
    Q: np.ndarray
    rms: float
    row_error: float
    common_size: tuple[int, int]
    pairs_used: list[str]
    pairs_skipped: list[str]

    def save(self, path: str | Path) -> None:
        """Write the calibration YAML (intrinsics, distortion, R, T, rectification, sizes, RMS, date)."""
        import yaml

        def cam(c: CameraCalibration) -> dict:
            return {
                "image_size": list(c.image_size),
                "K": _mat(c.K),
                "dist": _mat(c.dist.ravel()),
                "rms_px": round(float(c.rms), 4),
                "R_rect": _mat(c.R),
                "P_rect": _mat(c.P),
                "rectified_size": list(c.rectified_size),
            }

        doc = {
            "streamfuse_calibration": CALIBRATION_VERSION,
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "board": {"inner_corners": list(self.board), "square_m": self.square},
            "common_size": list(self.common_size),
            "left": cam(self.left),
            "right": cam(self.right),
            "stereo": {
                "R": _mat(self.R),
                "T_m": _mat(self.T.ravel()),
                "baseline_m": round(float(np.linalg.norm(self.T)), 6),
                "E": _mat(self.E),
                "F": _mat(self.F),
                "Q": _mat(self.Q),
                "rms_px": round(float(self.rms), 4),
                "rectified_row_error_px": round(float(self.row_error), 4),
                "pairs_used": self.pairs_used,
                "pairs_skipped": self.pairs_skipped,
            },
        }
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=200))


def _mat(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 10).tolist()


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ImageReadError(f"cannot decode calibration image {path}")
    return img


def _scale_matrix(size: tuple[int, int], common: tuple[int, int]) -> np.ndarray:
    """Pixel map from ``size`` to ``common`` with pixel centres aligned (as cv2.resize does)."""
    sx, sy = common[0] / size[0], common[1] / size[1]
    return np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1.0]])


def _to_common(points: np.ndarray, s: np.ndarray) -> np.ndarray:
    return (points.reshape(-1, 2) * np.diag(s)[:2] + s[:2, 2]).reshape(-1, 1, 2).astype(np.float32)


def calibrate_camera(
    corners: list[np.ndarray], obj: np.ndarray, size: tuple[int, int]
) -> tuple[CameraCalibration, list, list]:
    """Intrinsics of one camera at its own resolution; returns the calibration and per-view rvecs/tvecs."""
    rms, K, dist, rvecs, tvecs = cv2.calibrateCamera([obj] * len(corners), corners, size, None, None)
    return CameraCalibration(image_size=size, K=K, dist=dist.reshape(1, -1), rms=rms), rvecs, tvecs


def rectified_row_error(cal: StereoCalibration, left: list[np.ndarray], right: list[np.ndarray]) -> float:
    """Mean |y_left − y_right| of matched corners after rectification, in common-size pixels."""
    s = _scale_matrix(cal.right.image_size, cal.common_size)
    errs = []
    for cl, cr in zip(left, right, strict=True):
        yl = cv2.undistortPoints(cl, cal.left.K, cal.left.dist, R=cal.left.R, P=cal.left.P)[:, 0, 1]
        pr = cv2.undistortPoints(cr, cal.right.K, cal.right.dist, R=cal.right.R, P=cal.right.P)[:, 0, :]
        # Right rectified pixels are at the right camera's resolution: bring them to the common size.
        yr = _to_common(pr, s)[:, 0, 1]
        errs.append(np.abs(yl - yr))
    return float(np.mean(np.concatenate(errs)))


def calibrate_stereo(
    left_paths: list[Path], right_paths: list[Path], board: tuple[int, int], square: float, alpha: float = 0.0
) -> StereoCalibration:
    """Calibrate a stereo pair from chessboard image pairs (paired in sorted order).

    Args:
        left_paths, right_paths: the two cameras' images, same count; the cameras may differ in resolution.
        board: inner corners (cols, rows), e.g. (9, 6).
        square: square size in metres.
        alpha: stereoRectify free scaling (0 = only valid pixels, 1 = keep all source pixels).

    Raises:
        ConfigError: unequal image counts or fewer than 3 usable pairs.
    """
    if len(left_paths) != len(right_paths):
        raise ConfigError(
            f"--left matches {len(left_paths)} images but --right matches {len(right_paths)}; "
            "give one right image per left image"
        )
    obj = board_points(board, square)
    images = [(lp, rp, _read_gray(lp), _read_gray(rp)) for lp, rp in zip(left_paths, right_paths, strict=True)]
    # Each camera has one resolution: the most common one wins, pairs at another size are skipped and named.
    size_l = Counter((g.shape[1], g.shape[0]) for _, _, g, _ in images).most_common(1)[0][0]
    size_r = Counter((g.shape[1], g.shape[0]) for _, _, _, g in images).most_common(1)[0][0]
    left_c, right_c, used, skipped = [], [], [], []
    for lp, rp, gl, gr in images:
        name = f"{lp.name}+{rp.name}"
        if (gl.shape[1], gl.shape[0]) != size_l or (gr.shape[1], gr.shape[0]) != size_r:
            skipped.append(f"{name} (size differs)")
            continue
        cl, cr = find_corners(gl, board), find_corners(gr, board)
        if cl is None or cr is None:
            skipped.append(f"{name} (no board)")
            continue
        left_c.append(cl)
        right_c.append(cr)
        used.append(name)
    if len(used) < 3:
        raise ConfigError(
            f"board {board[0]}x{board[1]} found in only {len(used)} pair(s) (skipped: {', '.join(skipped)}); "
            "check --board (inner corners) and use at least 3 pairs"
        )
    cam_l, _, _ = calibrate_camera(left_c, obj, size_l)
    cam_r, _, _ = calibrate_camera(right_c, obj, size_r)

    # Stereo step at the common (left) size: scale the right camera's intrinsics and corners to it.
    common = size_l
    s = _scale_matrix(size_r, common)
    k_r = s @ cam_r.K
    right_common = [_to_common(c, s) for c in right_c]
    rms, _, _, _, _, R, T, E, F = cv2.stereoCalibrate(
        [obj] * len(left_c),
        left_c,
        right_common,
        cam_l.K,
        cam_l.dist,
        k_r,
        cam_r.dist,
        common,
        flags=cv2.CALIB_FIX_INTRINSIC,
        criteria=_STEREO_CRITERIA,
    )
    R1, R2, P1, P2, Q, _, _ = cv2.stereoRectify(
        cam_l.K, cam_l.dist, k_r, cam_r.dist, common, R, T, flags=cv2.CALIB_ZERO_DISPARITY, alpha=alpha
    )
    cam_l.R, cam_l.P, cam_l.rectified_size = R1, P1, common
    # The right camera keeps its own resolution: its rectified projection is P2 scaled back down.
    cam_r.R, cam_r.P, cam_r.rectified_size = R2, np.linalg.inv(s) @ P2, size_r
    cal = StereoCalibration(
        board=board,
        square=square,
        left=cam_l,
        right=cam_r,
        R=R,
        T=T,
        E=E,
        F=F,
        Q=Q,
        rms=rms,
        row_error=0.0,
        common_size=common,
        pairs_used=used,
        pairs_skipped=skipped,
    )
    cal.row_error = rectified_row_error(cal, left_c, right_c)
    return cal


def ideal_rig(
    left_size: tuple[int, int], right_size: tuple[int, int], focal_px: float, baseline_m: float
) -> StereoCalibration:
    """Calibration of an already rectified rig (parallel cameras, no distortion), e.g. the synthetic demo rig.

    ``focal_px`` is in left-camera pixels; the right camera has the same field of view at its own resolution.
    """

    def cam(size: tuple[int, int]) -> CameraCalibration:
        S = np.linalg.inv(_scale_matrix(size, left_size))
        K = S @ np.array([[focal_px, 0, (left_size[0] - 1) / 2], [0, focal_px, (left_size[1] - 1) / 2], [0, 0, 1.0]])
        return CameraCalibration(size, K, np.zeros((1, 5)), 0.0, np.eye(3), np.hstack([K, np.zeros((3, 1))]), size)

    left, right = cam(left_size), cam(right_size)
    right.P[0, 3] = -right.K[0, 0] * baseline_m
    T = np.array([[-baseline_m], [0.0], [0.0]])
    E = np.array([[0, 0, 0], [0, 0, baseline_m], [0, -baseline_m, 0]])
    kl, kr = left.K, _scale_matrix(right_size, left_size) @ right.K
    F = np.linalg.inv(kr).T @ E @ np.linalg.inv(kl)
    f, cx, cy = kl[0, 0], kl[0, 2], kl[1, 2]
    Q = np.array([[1, 0, 0, -cx], [0, 1, 0, -cy], [0, 0, 0, f], [0, 0, 1 / baseline_m, 0]])
    return StereoCalibration(
        board=(0, 0),
        square=0.0,
        left=left,
        right=right,
        R=np.eye(3),
        T=T,
        E=E,
        F=F / F[1, 2],
        Q=Q,
        rms=0.0,
        row_error=0.0,
        common_size=left_size,
        pairs_used=[],
        pairs_skipped=[],
    )


def preview(cal: StereoCalibration, left: np.ndarray, right: np.ndarray, step: int = 32) -> np.ndarray:
    """Side-by-side rectified pair (right upscaled to the common size) with horizontal epipolar lines."""
    from streamfuse.rectify import Rectifier

    rl = Rectifier.from_camera(cal.left, "left", "<memory>").apply(left)
    rr = Rectifier.from_camera(cal.right, "right", "<memory>").apply(right)
    if rr.shape[:2] != rl.shape[:2]:
        rr = cv2.resize(rr, (rl.shape[1], rl.shape[0]), interpolation=cv2.INTER_LINEAR)
    pair = np.concatenate([_as_bgr(rl), _as_bgr(rr)], axis=1)
    for i, y in enumerate(range(step // 2, pair.shape[0], step)):
        color = ((0, 255, 0), (0, 0, 255), (255, 0, 0))[i % 3]
        cv2.line(pair, (0, y), (pair.shape[1] - 1, y), color, 1, cv2.LINE_AA)
    return pair


def _as_bgr(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img


def summary(cal: StereoCalibration) -> str:
    """The human-readable report ``streamfuse calibrate`` prints."""
    lines = [
        f"pairs used: {len(cal.pairs_used)}; skipped: "
        + (", ".join(cal.pairs_skipped) if cal.pairs_skipped else "none"),
        f"left  {cal.left.image_size[0]}x{cal.left.image_size[1]}: RMS {cal.left.rms:.3f} px",
        f"right {cal.right.image_size[0]}x{cal.right.image_size[1]}: RMS {cal.right.rms:.3f} px",
        f"stereo RMS {cal.rms:.3f} px, baseline {np.linalg.norm(cal.T) * 1000:.1f} mm",
        f"rectified row error {cal.row_error:.3f} px (mean |y_left - y_right|)",
    ]
    return "\n".join(lines)
