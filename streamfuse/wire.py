"""The wire format: one ZeroMQ multipart message = [fixed binary header, raw frame buffer].

The header is a 48-byte little-endian struct (version 1):

    magic "SF" | version u8 | pixfmt u8 | flags u8 | pad u8 | stream u16 | seq u64 | ts_ns i64 | wall_ns i64 |
    width u32 | height u32

``ts_ns`` is the capture timestamp (integer ns; it drives sync and the video pts), ``wall_ns`` the host wall
clock when the frame was captured (it measures capture->encode latency). The dtype follows from the pixel format.
Every field and the exact buffer size are validated on receive, and the dimension limit is checked before
anything is allocated.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import numpy as np

MAGIC = b"SF"
VERSION = 1
HEADER = struct.Struct("<2sBBBBHQqqII")
HEADER_SIZE = HEADER.size
FLAG_EOS = 0x01  # end of stream: no buffer follows the meaning of this message
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_SIDE = 8192


class PixelFormat(enum.IntEnum):
    """Pixel formats on the wire, with their channel count and dtype."""

    GRAY8 = 1
    GRAY16 = 2
    RGB24 = 3

    @property
    def channels(self) -> int:
        return 3 if self is PixelFormat.RGB24 else 1

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16) if self is PixelFormat.GRAY16 else np.dtype(np.uint8)

    def nbytes(self, width: int, height: int) -> int:
        return width * height * self.channels * self.dtype.itemsize


class WireError(ValueError):
    """A message that fails validation; ``reason`` is a short counter key (e.g. ``bad_version``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Header:
    """Metadata of one frame on the wire."""

    stream: int
    seq: int
    ts_ns: int
    width: int
    height: int
    pixfmt: PixelFormat
    wall_ns: int = 0
    flags: int = 0

    @property
    def eos(self) -> bool:
        return bool(self.flags & FLAG_EOS)


@dataclass(frozen=True)
class Limits:
    """Receive-side limits that stop memory exhaustion; checked before any allocation."""

    max_side: int = DEFAULT_MAX_SIDE
    max_pixels: int = DEFAULT_MAX_PIXELS


def pixfmt_of(frame: np.ndarray) -> PixelFormat:
    """The wire pixel format of a numpy frame (H×W uint8, H×W uint16, H×W×3 uint8)."""
    if frame.ndim == 2 and frame.dtype == np.uint8:
        return PixelFormat.GRAY8
    if frame.ndim == 2 and frame.dtype == np.uint16:
        return PixelFormat.GRAY16
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        return PixelFormat.RGB24
    raise ValueError(f"no wire pixel format for shape {frame.shape} dtype {frame.dtype}")


def pack_header(h: Header) -> bytes:
    """Serialize a header."""
    return HEADER.pack(
        MAGIC, VERSION, int(h.pixfmt), h.flags, 0, h.stream, h.seq, h.ts_ns, h.wall_ns, h.width, h.height
    )


def encode_frame(frame: np.ndarray, stream: int, seq: int, ts_ns: int, wall_ns: int = 0) -> tuple[bytes, np.ndarray]:
    """Build the two message parts for a frame; the frame part is sent zero-copy by the transport."""
    frame = np.ascontiguousarray(frame)
    header = Header(stream, seq, ts_ns, frame.shape[1], frame.shape[0], pixfmt_of(frame), wall_ns)
    return pack_header(header), frame


def encode_eos(stream: int, seq: int, ts_ns: int = 0) -> tuple[bytes, bytes]:
    """The end-of-stream marker of a stream (offline mode): a header with FLAG_EOS and an empty buffer."""
    header = Header(stream, seq, ts_ns, 0, 0, PixelFormat.GRAY8, 0, FLAG_EOS)
    return pack_header(header), b""


def decode_header(data: bytes | memoryview, limits: Limits = Limits()) -> Header:
    """Parse and validate a header; raise WireError with a counter reason on any bad field."""
    if len(data) != HEADER_SIZE:
        raise WireError("bad_header_size", f"header is {len(data)} bytes, expected {HEADER_SIZE}")
    magic, version, pixfmt, flags, _pad, stream, seq, ts_ns, wall_ns, width, height = HEADER.unpack(data)
    if magic != MAGIC:
        raise WireError("bad_magic", f"magic {magic!r} is not {MAGIC!r}")
    if version != VERSION:
        raise WireError("bad_version", f"wire version {version}, this node speaks {VERSION}")
    try:
        fmt = PixelFormat(pixfmt)
    except ValueError:
        raise WireError("bad_pixfmt", f"unknown pixel format code {pixfmt}") from None
    if flags & ~FLAG_EOS:
        raise WireError("bad_flags", f"unknown flag bits 0x{flags:02x}")
    header = Header(stream, seq, ts_ns, width, height, fmt, wall_ns, flags)
    if header.eos:
        return header
    if width == 0 or height == 0:
        raise WireError("bad_dims", f"empty frame {width}x{height}")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise WireError(
            "oversized", f"frame {width}x{height} exceeds the limit ({limits.max_side} px side, {limits.max_pixels} px)"
        )
    return header


def decode_frame(parts: list, limits: Limits = Limits()) -> tuple[Header, np.ndarray | None]:
    """Validate a multipart message and return (header, frame view); the frame is None for an EOS marker.

    The returned array is a read-only view of the received buffer (no copy).
    """
    if len(parts) != 2:
        raise WireError("bad_part_count", f"{len(parts)} message parts, expected 2 (header, frame)")
    header = decode_header(_bytes_of(parts[0]), limits)
    payload = _buffer_of(parts[1])
    if header.eos:
        if len(payload):
            raise WireError("bad_size", "end-of-stream marker carries a payload")
        return header, None
    expected = header.pixfmt.nbytes(header.width, header.height)
    if len(payload) != expected:
        raise WireError(
            "bad_size",
            f"buffer is {len(payload)} bytes, {header.width}x{header.height} {header.pixfmt.name} needs {expected}",
        )
    shape = (header.height, header.width) + ((3,) if header.pixfmt.channels == 3 else ())
    frame = np.frombuffer(payload, dtype=header.pixfmt.dtype).reshape(shape)
    return header, frame


def _bytes_of(part) -> bytes | memoryview:
    return part.bytes if hasattr(part, "bytes") else part


def _buffer_of(part) -> memoryview:
    if hasattr(part, "buffer"):
        return part.buffer
    return memoryview(part)
