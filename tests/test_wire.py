"""The wire header: round trip and every validation failure."""

from __future__ import annotations

import numpy as np
import pytest

from streamfuse.wire import (
    HEADER,
    HEADER_SIZE,
    Limits,
    PixelFormat,
    WireError,
    decode_frame,
    decode_header,
    encode_eos,
    encode_frame,
)


def parts_of(frame: np.ndarray, **kw) -> list:
    header, buf = encode_frame(frame, stream=kw.get("stream", 1), seq=kw.get("seq", 7), ts_ns=kw.get("ts", 123))
    return [header, buf.tobytes()]


@pytest.mark.parametrize(
    "frame,fmt",
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), PixelFormat.GRAY8),
        (np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000, PixelFormat.GRAY16),
        (np.arange(36, dtype=np.uint8).reshape(3, 4, 3), PixelFormat.RGB24),
    ],
)
def test_round_trip(frame: np.ndarray, fmt: PixelFormat) -> None:
    header_bytes, buf = encode_frame(frame, stream=3, seq=42, ts_ns=-5_000_000_000, wall_ns=99)
    header, out = decode_frame([header_bytes, buf.tobytes()])
    assert (header.stream, header.seq, header.ts_ns, header.wall_ns) == (3, 42, -5_000_000_000, 99)
    assert (header.width, header.height, header.pixfmt) == (4, 3, fmt)
    assert out.dtype == frame.dtype and np.array_equal(out, frame)


def test_eos_round_trip() -> None:
    header, frame = decode_frame(list(encode_eos(stream=2, seq=10)))
    assert header.eos and header.seq == 10 and frame is None


def _raw(**fields) -> bytes:
    values = {
        "magic": b"SF",
        "version": 1,
        "pixfmt": 1,
        "flags": 0,
        "pad": 0,
        "stream": 1,
        "seq": 0,
        "ts": 0,
        "wall": 0,
        "w": 4,
        "h": 3,
    }
    values.update(fields)
    return HEADER.pack(*values.values())


@pytest.mark.parametrize(
    "parts,reason",
    [
        ([_raw()[:-1], b"\0" * 12], "bad_header_size"),  # truncated header
        ([_raw(), b"\0" * 11], "bad_size"),  # truncated buffer
        ([_raw(), b"\0" * 13], "bad_size"),  # oversized buffer
        ([_raw(version=2), b"\0" * 12], "bad_version"),
        ([_raw(magic=b"XX"), b"\0" * 12], "bad_magic"),
        ([_raw(pixfmt=9), b"\0" * 12], "bad_pixfmt"),
        ([_raw(flags=0x80), b"\0" * 12], "bad_flags"),
        ([_raw(w=0), b""], "bad_dims"),
        ([_raw(w=100_000, h=100_000), b""], "oversized"),  # absurd dims: rejected before any allocation
        ([_raw(w=5000, h=5000), b""], "oversized"),  # each side fine, area too large
        ([_raw()], "bad_part_count"),
        ([_raw(), b"\0" * 12, b"extra"], "bad_part_count"),
    ],
)
def test_validation_failures(parts: list, reason: str) -> None:
    with pytest.raises(WireError) as err:
        decode_frame(parts, Limits(max_side=8192, max_pixels=4096 * 4096))
    assert err.value.reason == reason


def test_dimension_limit_is_configurable() -> None:
    frame = np.zeros((64, 64), np.uint8)
    decode_frame(parts_of(frame), Limits(max_side=64, max_pixels=64 * 64))
    with pytest.raises(WireError, match="oversized"):
        decode_frame(parts_of(frame), Limits(max_side=63))


def test_header_is_fixed_size() -> None:
    header, _ = encode_frame(np.zeros((2, 2), np.uint8), 1, 0, 0)
    assert len(header) == HEADER_SIZE
    assert decode_header(header).pixfmt is PixelFormat.GRAY8


def test_received_frame_is_a_view_not_a_copy() -> None:
    header, buf = encode_frame(np.ones((8, 8), np.uint8), 1, 0, 0)
    payload = bytearray(buf.tobytes())
    _, frame = decode_frame([header, payload])
    payload[0] = 7
    assert frame[0, 0] == 7
