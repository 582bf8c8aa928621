"""Camera sources: the synthetic rig, video files, V4L2/USB cameras and RTSP streams."""

from __future__ import annotations

import typing

from streamfuse.sources.base import CapturedFrame, Source

if typing.TYPE_CHECKING:  # an annotation only: not part of this package's API
    from streamfuse.config.schema import RigConfig


def open_source(cfg: RigConfig, camera: str, limit: int | None = None) -> Source:
    """Open the source of one camera of the rig; ``limit`` caps the number of (mono-clock) frames."""
    cam = cfg.cameras[camera]
    if cam.source == "synthetic":
        from streamfuse.sources.synthetic import SyntheticCamera

        mono_fps = cfg.cameras[cfg.mono_camera].fps
        index = list(cfg.cameras).index(camera) if len(cfg.mono_cameras) > 1 else 0  # arrays: own noise per camera
        if cam.role == "nir":  # simulated NIR of the same scene (sources/synthetic_nir.py), GRAY8 frames
            from streamfuse.sources.synthetic_nir import SyntheticNirCamera

            return SyntheticNirCamera(cfg.synthetic, mono_fps, limit, view_shift=cam.view_shift, index=index)
        return SyntheticCamera(cfg.synthetic, cam.role, mono_fps, limit, cam.view_shift, index)
    if cam.source == "file":
        from streamfuse.sources.file import FileCamera

        return FileCamera(cam.path, cam.role, cam.size, limit, cam.fps, cam.on_corrupt)
    if cam.source == "v4l2":
        from streamfuse.sources.camera import V4L2Camera

        return V4L2Camera(cam.device, cam.role, cam.size, cam.fps)
    from streamfuse.sources.camera import RtspCamera

    return RtspCamera(cam.url, cam.role)


__all__ = ["CapturedFrame", "Source", "open_source"]
