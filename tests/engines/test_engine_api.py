"""The public engine API of DESIGN §2 and the `streamfuse colorize` command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import streamfuse
from streamfuse.cli import main
from streamfuse.color import luma
from streamfuse.engines import EngineError, EngineStream, register_engine
from streamfuse.engines.naive import NaiveEngine


def test_load_engine_prepare_colorize_in_rgb_order() -> None:
    truth = np.zeros((64, 96, 3), np.uint8)
    truth[..., 0] = 220  # a red scene: R must stay the largest channel (RGB, not BGR)
    truth[..., 1:] = 40
    eng = streamfuse.load_engine("naive")
    state = eng.prepare_reference(cv2.resize(truth, (24, 16), interpolation=cv2.INTER_AREA))
    out = eng.colorize(luma(truth), state)
    assert out.shape == truth.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - truth).max() <= 2
    assert np.array_equal(eng.colorize(luma(truth), state), out)  # deterministic


def test_colorize_accepts_a_raw_reference() -> None:
    eng = streamfuse.load_engine("naive")
    ref = np.full((16, 24, 3), 128, np.uint8)
    assert eng.colorize(np.zeros((64, 96), np.uint8), ref).shape == (64, 96, 3)
    assert eng.reference_calls == 1


def test_every_engine_name_is_listed_and_unknown_names_fail_loudly() -> None:
    assert {"naive", "guided"} <= set(streamfuse.available_engines())
    with pytest.raises(EngineError, match="unknown engine 'nope'; available engines: .*guided"):
        streamfuse.load_engine("nope")


def test_unknown_option_names_the_accepted_ones() -> None:
    with pytest.raises(EngineError, match="has no option.*colour.*accepted: preset"):
        streamfuse.load_engine("guided", colour=1)


def test_duplicate_registration_raises() -> None:
    with pytest.raises(EngineError, match="already registered"):
        register_engine("naive", NaiveEngine)


@pytest.mark.parametrize(
    "mono,ref,message",
    [
        (np.zeros((64, 96, 3), np.uint8), np.zeros((16, 24, 3), np.uint8), "mono frame must be a H×W uint8"),
        (np.zeros((64, 96), np.float32), np.zeros((16, 24, 3), np.uint8), "mono frame must be a H×W uint8"),
        (np.zeros((64, 96), np.uint8), np.zeros((16, 24), np.uint8), "reference must be a h×w×3 uint8 RGB"),
        (np.zeros((16, 24), np.uint8), np.zeros((64, 96, 3), np.uint8), "scale gap s = H/h must be >= 1"),
    ],
)
def test_bad_inputs_get_clear_errors(mono: np.ndarray, ref: np.ndarray, message: str) -> None:
    with pytest.raises(EngineError, match=message):
        streamfuse.load_engine("naive").colorize(mono, ref)


def test_colorize_command(tmp_path: Path) -> None:
    truth = np.zeros((64, 96, 3), np.uint8)
    truth[:, :48] = (30, 160, 40)
    truth[:, 48:] = (40, 60, 200)
    cv2.imwrite(str(tmp_path / "mono.png"), luma(truth))
    cv2.imwrite(str(tmp_path / "ref.png"), cv2.cvtColor(cv2.resize(truth, (24, 16)), cv2.COLOR_RGB2BGR))
    code = main(
        [
            "colorize",
            "--engine",
            "guided",
            "--mono",
            str(tmp_path / "mono.png"),
            "--ref",
            str(tmp_path / "ref.png"),
            "-o",
            str(tmp_path / "out.png"),
            "--opt",
            "preset=ultrafast",
        ]
    )
    assert code == 0
    out = cv2.cvtColor(cv2.imread(str(tmp_path / "out.png")), cv2.COLOR_BGR2RGB)
    assert out[32, 10, 1] > out[32, 10, 2] and out[32, 80, 2] > out[32, 80, 1]


def test_colorize_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    code = main(["colorize", "--mono", str(tmp_path / "bad.png"), "--ref", str(tmp_path / "none.png"), "-o", "x.png"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot decode image" in err and "Traceback" not in err


# Temporal streams (ccdc, guided-temporal, duallens, pikfix) use the frames in between; their own tests cover them.
@pytest.mark.parametrize("name", ["naive", "guided"])
def test_open_stream_on_a_frame_wise_engine_gives_exactly_the_frame_wise_outputs(name: str) -> None:
    assert type(streamfuse.load_engine(name).open_stream()) is EngineStream  # the base class's frame-wise stream
    rng = np.random.default_rng(2)
    scene = cv2.resize(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (140, 64), interpolation=cv2.INTER_CUBIC)
    frames = [np.ascontiguousarray(scene[:, t : t + 96]) for t in range(0, 21, 3)]  # a pan, 7 frames
    refs = {t: cv2.resize(frames[t], (24, 16), interpolation=cv2.INTER_AREA) for t in (0, 3, 6)}  # every K = 3
    framewise, streamed = streamfuse.load_engine(name), streamfuse.load_engine(name)
    want, state = [], None
    for t, frame in enumerate(frames):
        if t in refs:
            state = framewise.prepare_reference(refs[t])
        want.append(framewise.colorize(luma(frame), state))
    stream = streamed.open_stream()
    got = []
    for t, frame in enumerate(frames):
        if t in refs:
            stream.push_reference(refs[t])
        got.append(stream.colorize(luma(frame)))
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    assert streamed.reference_calls == 3 == stream.references and stream.frames == len(frames)
    assert not np.array_equal(got[0], got[3])  # the frames differ, so equality is not trivial
