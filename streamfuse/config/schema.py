"""The typed rig.yaml schema: one dataclass per section, a docstring line per field.

Fields without a default are required. ``metadata={"path": ...}`` marks a file path that must exist
(resolved relative to the YAML file). ``Size`` fields take ``"768x576"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Size = tuple[int, int]


@dataclass
class NoiseConfig:
    """Per-camera sensor noise, std a·√κ (dual-lens model; Setup1: mono 0.01, colour 0.03)."""

    mono: float = 0.01
    """a for the mono camera."""
    color: float = 0.03
    """a for the colour camera."""


@dataclass
class ParallaxConfig:
    """Geometric offset of the colour camera against the mono one (at mono resolution)."""

    shift: tuple[float, float] = (0.0, 0.0)
    """Fixed shift (dx, dy) in mono pixels."""
    homography: list[list[float]] | None = None
    """Optional 3×3 homography applied before the shift."""
    drift: tuple[float, float] = (0.0, 0.0)
    """Slow drift of the shift, in mono pixels per second; it reverses every half period, so it stays bounded."""
    drift_period_s: float = 20.0
    """Period of the back-and-forth drift: the offset stays within drift × period / 2."""


@dataclass
class SyntheticConfig:
    """The built-in synthetic rig: turns a colour video (or image folder) into mono-HR + colour-LR streams."""

    video: str | None = field(default=None, metadata={"path": "any"})
    """Colour video file or folder of images; the ground truth. Default: the clip shipped with the package."""
    size: Size | None = None
    """Resize the source to this mono size (WxH); default: the source size cropped to multiples of 8."""
    scale: float = 4.0
    """Scale gap s = H/h >= 1 between mono and colour cameras."""
    parallax: ParallaxConfig = field(default_factory=ParallaxConfig)
    """Offset of the colour camera."""
    time_offset_s: float = 0.0
    """The colour camera sees the scene this many seconds later (negative: earlier)."""
    color_fps_ratio: float = 1.0
    """Colour fps as a fraction of the mono fps (0 < r <= 1)."""
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    """Sensor noise per camera."""
    loop: bool = False
    """Loop the source forever (live demos)."""
    seed: int = 0
    """Noise seed; runs are deterministic."""
    truth: bool = True
    """Send the ground truth with the mono stream so the run summary reports chroma PSNR."""


@dataclass
class CameraConfig:
    """One camera of the rig."""

    role: Literal["mono", "color", "nir"]
    """mono (high-res luma), color (low-res reference) or nir (a near-infrared grey camera; fused by an NIR engine
    such as cocolor, with a colour camera's help or, with none in the rig, from the engine's learned prior)."""
    source: Literal["synthetic", "file", "v4l2", "rtsp"]
    """Where frames come from."""
    path: str | None = field(default=None, metadata={"path": "any"})
    """Video file, folder of images (played at ``fps``) or one still image (source: file)."""
    device: str | None = None
    """V4L2/USB device, e.g. /dev/video0 or 0 (source: v4l2)."""
    url: str | None = None
    """rtsp:// URL (source: rtsp)."""
    fps: float = 30.0
    """Frame rate; the synthetic rig and live pacing use it. Files keep their own timestamps."""
    size: Size | None = None
    """Resize frames to WxH (file/v4l2/rtsp)."""
    calibration: str | None = field(default=None, metadata={"path": "file"})
    """Stereo calibration YAML from `streamfuse calibrate`; frames are rectified with precomputed maps."""
    calibration_side: Literal["left", "right"] = "left"
    """Which camera of the calibrated pair this is."""
    reconnect: bool = True
    """Live sources: reconnect with backoff after a failure."""
    partner: str | None = None
    """Mono/NIR cameras of an array: the colour camera that is this camera's reference; default: the nearest colour
    camera by ``position``, or the only one."""
    position: tuple[float, float, float] | None = None
    """Camera centre in rig coordinates, metres (e.g. from the translations `streamfuse calibrate` reports); picks
    each mono camera's nearest colour partner."""
    view_shift: tuple[float, float] = (0.0, 0.0)
    """Synthetic source: this camera's own offset of the scene (dx, dy) in mono pixels, the parallax of an array
    camera (its ground truth moves with it)."""
    clock_skew_ppm: float = 0.0
    """Synthetic source, live mode: the camera clock runs this many parts per million fast, as a drifting camera does
    (sync estimates the drift, corrects it and reports it)."""
    on_corrupt: Literal["fail", "skip"] = "fail"
    """File sources: a damaged frame ends the run with an error naming the file, frame and byte (fail), or is
    dropped and counted (skip)."""


@dataclass
class SyncConfig:
    """Pairing mono frames with colour references."""

    tolerance_ms: float = 20.0
    """A colour frame up to this much newer than the mono frame may be paired with it."""
    max_reference_age_ms: float = 1000.0
    """A reference older than this triggers the fallback."""
    fallback: Literal["grey", "last"] = "last"
    """grey: pass the mono frame through as grey; last: keep using the last good reference."""


@dataclass
class EngineConfig:
    """The fusion engine."""

    name: str = "guided"
    """Registry name (streamfuse.available_engines())."""
    options: dict[str, object] = field(default_factory=dict)
    """Constructor options of the engine; ``backend: tensorrt`` runs a learned engine on an NVIDIA GPU."""
    precision: Literal["fp16", "fp32"] = "fp16"
    """GPU precision of the TensorRT engines when ``options.backend`` is tensorrt (docs/GPU.md); ignored on the CPU."""


@dataclass
class OutputConfig:
    """One recording."""

    path: str
    """Output file (.mp4 is written as fragmented MP4, .mkv as Matroska; both survive a crash)."""
    codec: str = "libx264"
    """Video codec (libx264, libx265, h264_nvenc, hevc_nvenc; NVENC falls back to libx264)."""
    crf: int = 18
    """Constant rate factor (quality)."""
    preset: str = "veryfast"
    """Encoder speed preset."""
    side_by_side: bool = False
    """Record mono | result side by side instead of the result alone."""
    keyframe_s: float = 1.0
    """Keyframe interval (seeking granularity); fragments also close every 250 ms, which bounds crash loss."""
    camera: str | None = None
    """Mono camera whose fused video this records; default: the first mono camera."""
    mosaic: bool = False
    """Record every mono camera's fused video tiled in one grid (camera is then ignored)."""
    mux_from: str | None = field(default=None, metadata={"path": "file"})
    """Media file (the mono file of a transcode) whose time base, start offset and frame rate the recording keeps,
    and whose audio streams it copies without re-encoding."""


@dataclass
class EndpointConfig:
    """A ZeroMQ endpoint (ipc:// on one host, tcp:// across hosts)."""

    url: str
    """ipc://PATH or tcp://HOST:PORT."""
    server_secret_key: str | None = field(default=None, metadata={"path": "file"})
    """CURVE secret key file of the binding side (enables encryption)."""
    server_public_key: str | None = field(default=None, metadata={"path": "file"})
    """CURVE public key file of the binding side (given to connecting clients)."""
    client_secret_key: str | None = field(default=None, metadata={"path": "file"})
    """CURVE secret key file of the connecting side."""
    authorized_clients: str | None = field(default=None, metadata={"path": "any"})
    """Folder of client public key files allowed to connect."""
    insecure: bool = False
    """Allow a non-loopback tcp bind without CURVE (a warning is still printed)."""


@dataclass
class LimitsConfig:
    """Receive-side limits, checked before allocation."""

    max_side: int = 8192
    """Largest accepted frame width or height."""
    max_pixels: int = 4096 * 4096
    """Largest accepted frame area."""


@dataclass
class ObserveConfig:
    """Operator views of a running rig; `streamfuse run --metrics-port/--preview-port/--trace` set these too."""

    metrics_port: str | None = None
    """Serve Prometheus metrics on PORT or HOST:PORT (loopback unless a host is given); needs the [observe] extra."""
    preview_port: str | None = None
    """Serve the live preview page (mono | colour reference | output, fps, latency, drops) on PORT or HOST:PORT."""
    trace: str | None = None
    """Write per-frame stage timestamps (capture, send, receive, sync, engine, encode) to this Chrome trace file."""


PRIMARY_ROLES = ("mono", "nir")  # the cameras that are fused (NIR is a grey camera of another spectrum)


@dataclass
class RigConfig:
    """A whole rig: cameras, sync, engine, outputs and links."""

    cameras: dict[str, CameraConfig]
    """Cameras by name: one or more mono (or NIR) cameras plus colour cameras; each mono camera pairs with one."""
    name: str = "rig"
    """Rig name (used in default ipc paths and logs)."""
    mode: Literal["offline", "live"] = "offline"
    """offline: lossless with backpressure; live: pace to fps and drop stale frames (counted)."""
    synthetic: SyntheticConfig | None = None
    """The synthetic rig, for cameras whose source is synthetic."""
    sync: SyncConfig = field(default_factory=SyncConfig)
    """Pairing policy."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Fusion engine."""
    outputs: list[OutputConfig] = field(default_factory=list)
    """Recordings."""
    endpoints: dict[str, EndpointConfig] = field(default_factory=dict)
    """Link endpoints by camera name or "output"; defaults to ipc sockets in a per-run folder."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    """Frame size limits."""
    observe: ObserveConfig = field(default_factory=ObserveConfig)
    """Metrics, live preview and latency trace."""
    source_file: str = field(default="", metadata={"internal": True})
    """Set by the loader: the YAML file this came from."""
    key_lines: dict[str, int] = field(default_factory=dict, metadata={"internal": True})
    """Set by the loader: the line of each key (``cameras.mono.path``), so later checks can name it."""

    @property
    def mono_camera(self) -> str:
        return next(name for name, cam in self.cameras.items() if cam.role in PRIMARY_ROLES)

    @property
    def mono_cameras(self) -> list[str]:
        """Every mono (or NIR) camera of the array, in config order (one fused output stream each)."""
        return [name for name, cam in self.cameras.items() if cam.role in PRIMARY_ROLES]

    @property
    def nir_cameras(self) -> list[str]:
        """The NIR cameras: grey primary cameras whose frames only an NIR-capable engine may fuse."""
        return [name for name, cam in self.cameras.items() if cam.role == "nir"]

    def partner_of(self, mono: str) -> str | None:
        """The colour camera whose frames are ``mono``'s references (the loader fills in the nearest); None for an
        NIR camera in a rig without colour cameras (the engine's learned prior)."""
        return self.cameras[mono].partner or (self.color_cameras[0] if self.color_cameras else None)

    @property
    def color_cameras(self) -> list[str]:
        return [name for name, cam in self.cameras.items() if cam.role == "color"]
