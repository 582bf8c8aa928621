"""Encoder choice: NVENC when PyAV can really open it, otherwise the software encoder, with a log line."""

import logging
from fractions import Fraction

import av
import numpy as np
import pytest

from streamfuse import nvenc


@pytest.fixture
def opens(monkeypatch):
    """Pretend exactly the encoders in the returned set open on this machine."""
    available: set[str] = set()
    monkeypatch.setattr(nvenc, "can_open", lambda name: name in available)
    return available


def test_nvenc_chosen_when_it_opens(opens):
    opens.update({"h264_nvenc", "hevc_nvenc", "libx264", "libx265"})
    assert nvenc.pick_encoder("h264") == "h264_nvenc"
    assert nvenc.pick_encoder("H265") == "hevc_nvenc"
    assert nvenc.pick_encoder("h264_nvenc") == "h264_nvenc"


def test_fallback_to_software_is_logged(opens, caplog):
    opens.update({"libx264", "libx265"})
    caplog.set_level(logging.INFO, logger="streamfuse.nvenc")
    assert nvenc.pick_encoder("h264") == "libx264"
    assert "h264_nvenc is not usable here" in caplog.text and "encoding with libx264" in caplog.text
    assert nvenc.pick_encoder("hevc_nvenc") == "libx265"
    opens.discard("libx265")
    assert nvenc.pick_encoder("hevc") == "libx264"


def test_explicit_software_encoder_passes_through(opens):
    assert nvenc.pick_encoder("libx264") == "libx264"
    assert nvenc.pick_encoder("mpeg4") == "mpeg4"


def test_nothing_opens_is_a_clear_error(opens):
    with pytest.raises(ValueError, match="no h264 encoder opens on this machine \\(tried h264_nvenc, libx264\\)"):
        nvenc.pick_encoder("h264")


def test_probe_opens_real_encoders_only():
    assert nvenc.can_open("libx264") is True
    assert nvenc.can_open("no_such_encoder") is False
    # av.codecs_available lists h264_nvenc even without a GPU; the probe must agree with actually opening it
    if "h264_nvenc" in av.codecs_available:
        assert nvenc.can_open("h264_nvenc") == _opens_by_encoding("h264_nvenc")


def _opens_by_encoding(name: str) -> bool:
    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 256, 256, "yuv420p", Fraction(1, 25)
        ctx.open()
    except Exception:  # noqa: BLE001 - any FFmpeg error means it does not open
        return False
    return True


def test_picked_encoder_encodes_and_decodes(tmp_path):
    name = nvenc.pick_encoder("h264")
    path = tmp_path / "out.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(name, rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 256, "yuv420p"
        for i in range(5):
            img = np.full((256, 320, 3), 40 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    with av.open(str(path)) as inp:
        decoded = [f.to_ndarray(format="gray") for f in inp.decode(video=0)]
    assert len(decoded) == 5 and abs(float(decoded[4].mean()) - float(decoded[1].mean()) * 4) < 12


def test_nvenc_options_translate_x264_settings():
    assert nvenc.nvenc_options(23, "veryfast") == {"rc": "vbr", "cq": "23", "preset": "p3", "tune": "hq"}
    live = nvenc.nvenc_options(18, "ultrafast", live=True)
    assert live["preset"] == "p1" and live["tune"] == "ll" and live["zerolatency"] == "1"
    assert "crf" not in live  # NVENC has no crf option
    assert nvenc.nvenc_options(30, "p6")["preset"] == "p6"  # NVENC names pass through
