"""The built-in synthetic rig: any colour video becomes a mono-HR stream and a colour-LR stream, with ground truth.

The mono camera sees the BT.601 luma of each source frame plus sensor noise. The colour camera runs at
``color_fps_ratio`` of the mono rate, sees the scene ``time_offset_s`` later, through a parallax warp (homography, shift
and drift), area-downsampled by the scale gap ``s``, with its own noise. Both cameras of one rig config produce the same
scene deterministically, so each can run in its own capture process.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from streamfuse.camera_model import downsample, sensor_noise, translation, warp_homography
from streamfuse.color import luma
from streamfuse.config.presets import demo_video
from streamfuse.config.schema import SyntheticConfig
from streamfuse.sources.base import CapturedFrame, Source
from streamfuse.sources.video import fit_frame, read_rgb_frames


class SyntheticCamera(Source):
    """One camera (``role`` mono or color) of the synthetic rig at ``fps`` mono frames per second."""

    def __init__(
        self,
        cfg: SyntheticConfig,
        role: str,
        fps: float,
        limit: int | None = None,
        view_shift: tuple[float, float] = (0.0, 0.0),
        index: int = 0,
    ) -> None:
        if role not in ("mono", "color", "nir"):
            raise ValueError(f"synthetic rig has no camera role {role!r}")
        self.cfg = cfg
        self.role = role
        self.fps = fps
        self.limit = limit  # number of mono frames to cover (None: the whole source)
        # an array camera sees the scene from its own place (its truth moves with it) and has its own noise
        self._view = translation(*view_shift) if any(view_shift) else None
        self._rng = np.random.default_rng([cfg.seed, 0 if role == "mono" else 1, *([index] if index else [])])

    def _scene(self) -> Iterator[np.ndarray]:
        """Source frames fitted to the rig size, looping when configured."""
        while True:
            yielded = False
            for _ts, rgb in read_rgb_frames(self.cfg.video or demo_video(), self.fps):
                yielded = True
                frame = fit_frame(rgb, self.cfg.size)
                yield frame if self._view is None else warp_homography(frame, self._view)
            if not self.cfg.loop or not yielded:
                return

    def frames(self) -> Iterator[CapturedFrame]:
        return self._mono() if self.role == "mono" else self._color()

    def _mono(self) -> Iterator[CapturedFrame]:
        period = 1e9 / self.fps
        for i, truth in enumerate(itertools.islice(self._scene(), self.limit)):
            image = sensor_noise(luma(truth), self.cfg.noise.mono, self._rng)
            yield CapturedFrame(round(i * period), image, truth if self.cfg.truth else None)

    def colour_view(self, truth: np.ndarray, t_s: float) -> np.ndarray:
        """What the colour camera records of a scene frame at time ``t_s``: parallax, scale gap, noise."""
        par = self.cfg.parallax
        phase = t_s % par.drift_period_s
        drift_t = min(phase, par.drift_period_s - phase)  # a triangle wave: out and back, bounded on long runs
        homography = translation(par.shift[0] + par.drift[0] * drift_t, par.shift[1] + par.drift[1] * drift_t)
        if par.homography is not None:
            homography = homography @ np.asarray(par.homography, dtype=np.float64)
        if not np.allclose(homography, np.eye(3)):
            truth = warp_homography(truth, homography)
        return sensor_noise(downsample(truth, self.cfg.scale), self.cfg.noise.color, self._rng)

    def _color(self) -> Iterator[CapturedFrame]:
        """Colour frames at times j / (fps·ratio), each showing the scene at that time plus the time offset."""
        color_period = 1e9 / (self.fps * self.cfg.color_fps_ratio)
        offset_frames = self.cfg.time_offset_s * self.fps
        scene = self._scene()
        current, index = next(scene, None), 0
        if current is None:
            return
        last_mono = None if self.limit is None else self.limit - 1
        for j in itertools.count():
            ts = round(j * color_period)
            mono_pos = ts * self.fps / 1e9
            if last_mono is not None and mono_pos > last_mono + 1e-6:
                return
            want = max(0, round(mono_pos + offset_frames))
            while index < want:
                nxt = next(scene, None)
                if nxt is None:
                    return
                current, index = nxt, index + 1
            yield CapturedFrame(ts, self.colour_view(current, ts / 1e9))
