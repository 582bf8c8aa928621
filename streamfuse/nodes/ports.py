"""Ports: the named, typed link ends an operator declares (as Holoscan operators declare inputs and outputs).

A port is named after its link (a camera name, or ``output``) and says which kind of stream it carries, so a node
can check every message against what the port accepts. Camera arrays add ports, not node types: a fusion node
with N mono and M colour cameras declares N + M input ports and pairs them (``CameraPair``).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamfuse.config.schema import RigConfig
from streamfuse.wire import PixelFormat

KIND_FORMATS: dict[str, tuple[PixelFormat, ...]] = {
    "mono": (PixelFormat.GRAY8, PixelFormat.GRAY16),
    "nir": (PixelFormat.GRAY8, PixelFormat.GRAY16),
    "color": (PixelFormat.RGB24,),
    "fused": (PixelFormat.RGB24,),
}
"""Pixel formats each stream kind accepts; a new kind (e.g. NIR) adds a line here."""

TRUTH_STREAM_FLAG = 0x8000  # the synthetic mono camera sends its ground truth as stream (mono id | flag)


@dataclass(frozen=True)
class Port:
    """One link end of an operator: the link name, the stream kind, and the wire stream id it carries."""

    link: str
    kind: str
    stream: int = 0

    @property
    def primary(self) -> bool:
        """A grey camera whose frames are fused (mono or NIR), as opposed to a colour reference."""
        return self.kind in ("mono", "nir")

    def accepts(self, pixfmt: PixelFormat) -> bool:
        """Whether a frame of this pixel format belongs on this port."""
        return pixfmt in KIND_FORMATS[self.kind]


@dataclass(frozen=True)
class CameraPair:
    """A mono port and the colour port whose frames are its references; the fusion node's unit of work."""

    mono: Port
    colour: Port | None
    """None: an NIR camera alone (no colour camera in the rig); the engine colorizes from its learned prior."""
    outputs: tuple[int, ...]
    """Indexes of the rig outputs (wire streams on the output link) that record this pair's fused video."""


def stream_ids(cfg: RigConfig) -> dict[str, int]:
    """Wire stream id of each camera: its 1-based position in the rig's camera list."""
    return {name: i + 1 for i, name in enumerate(cfg.cameras)}


def camera_port(cfg: RigConfig, camera: str) -> Port:
    """The port of one camera's link (its role is the stream kind)."""
    return Port(camera, cfg.cameras[camera].role, stream_ids(cfg)[camera])


def camera_pairs(cfg: RigConfig) -> list[CameraPair]:
    """The pairs a rig fuses: every mono camera with its colour partner, recorded by the outputs naming it."""
    pairs = []
    for mono in cfg.mono_cameras:
        outputs = tuple(
            i for i, out in enumerate(cfg.outputs) if not out.mosaic and (out.camera or cfg.mono_camera) == mono
        )
        partner = cfg.partner_of(mono)
        colour = camera_port(cfg, partner) if partner is not None else None
        pairs.append(CameraPair(camera_port(cfg, mono), colour, outputs))
    return pairs


def mosaic_outputs(cfg: RigConfig) -> tuple[int, ...]:
    """Indexes of the outputs that record every pair tiled in one grid."""
    return tuple(i for i, out in enumerate(cfg.outputs) if out.mosaic)


def output_cameras(cfg: RigConfig) -> tuple[str, ...]:
    """The mono camera each output records ("mosaic" for a mosaic), by output index."""
    return tuple("mosaic" if out.mosaic else (out.camera or cfg.mono_camera) for out in cfg.outputs)


def rig_cameras(cfg: RigConfig) -> list[str]:
    """The cameras whose capture nodes a rig runs: those that some pair uses."""
    ports = (p for pair in camera_pairs(cfg) for p in (pair.mono, pair.colour) if p is not None)
    return list(dict.fromkeys(p.link for p in ports))
