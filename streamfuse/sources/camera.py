"""Live cameras: V4L2/USB devices through OpenCV and RTSP URLs through PyAV, with errors that name the device."""

from __future__ import annotations

import time
from collections.abc import Iterator

import av
import cv2

from streamfuse.color import luma
from streamfuse.errors import SourceError
from streamfuse.sources.base import CapturedFrame, Source


class V4L2Camera(Source):
    """A V4L2/USB camera opened with OpenCV (``device`` is a path like /dev/video0 or an index)."""

    live = True

    def __init__(self, device: str, role: str, size: tuple[int, int] | None = None, fps: float = 30.0) -> None:
        self.device = device
        self.role = role
        target = int(device) if str(device).isdigit() else str(device)
        self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2) if isinstance(target, str) else cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(
                f"camera {device!r} could not be opened: no such device, or it is busy or not permitted; "
                "list devices with `v4l2-ctl --list-devices`"
            )
        if size:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        self._cap.set(cv2.CAP_PROP_FPS, fps)

    def frames(self) -> Iterator[CapturedFrame]:
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                raise SourceError(f"camera {self.device!r} stopped delivering frames")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield CapturedFrame(time.time_ns(), rgb if self.role == "color" else luma(rgb))

    def close(self) -> None:
        self._cap.release()


class RtspCamera(Source):
    """An RTSP (or other network) stream opened with PyAV over TCP, with a connect timeout."""

    live = True

    def __init__(self, url: str, role: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.role = role
        self.timeout_s = timeout_s  # for opening and for each read: a stalled stream fails instead of hanging
        try:
            self._container = av.open(url, options={"rtsp_transport": "tcp"}, timeout=timeout_s)
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"stream {url!r} could not be opened: {exc}") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"stream {url!r} has no video track")

    def frames(self) -> Iterator[CapturedFrame]:
        try:
            for frame in self._container.decode(video=0):
                rgb = frame.to_ndarray(format="rgb24")
                yield CapturedFrame(time.time_ns(), rgb if self.role == "color" else luma(rgb))
        except av.error.ExitError:  # PyAV's read timeout interrupts FFmpeg
            raise SourceError(f"stream {self.url!r} stalled: no data for {self.timeout_s:g} s") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"stream {self.url!r} dropped: {exc}") from None
        raise SourceError(f"stream {self.url!r} ended")

    def close(self) -> None:
        self._container.close()
